/* The documents mail clients fetch to set themselves up for a domain: Thunderbird's
 * config-v1.1.xml, Outlook's Autodiscover POX response and Apple's .mobileconfig profile. Each
 * names the domain's IMAP/POP3/SMTP servers from its [domain] section, with the client's
 * address as user name and the password sent as it is typed (over TLS): the client logs in to
 * mailgate with its local password, not with OAuth. Every value is XML-escaped. */
#ifndef MG_AUTOCONFIG_H
#define MG_AUTOCONFIG_H

#include <stdio.h>

#include "config.h"

/* Writes s with &, <, >, " and ' as entities: text and attribute values in XML and HTML. */
void autoconfig_xml_text(FILE *f, const char *s);

/* The address's domain part (after the one '@') when address is local@domain with an RFC 5322
 * dot-atom local part of at most 64 bytes and a host name as domain; NULL otherwise. */
const char *autoconfig_address_domain(const char *address);

/* Each returns a NUL-terminated document to free(), or NULL when the domain offers no server
 * the format can describe (a profile without an incoming or an outgoing server). */
char *autoconfig_thunderbird(const struct domain_conf *d);
char *autoconfig_autodiscover(const struct domain_conf *d, const char *address);
char *autoconfig_mobileconfig(const struct domain_conf *d, const char *address);

#endif
