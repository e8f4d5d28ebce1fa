"""Test stand-ins for mailgate: certificates, a fake Entra ID, a private Dovecot, the gateway."""
