"""Files as an admin sets them up for a gateway started as root."""
import grp
import os
import pwd

GATEWAY_USER = "mailgate"  # [gateway] user's default


def share_with_gateway_user(path, user=GATEWAY_USER):
    """A secret file the broker reads again after dropping root to [gateway] user (a reload, a
    worker's certificate): root's, group user, mode 0640. Not root (or no such group yet):
    ours, 0600."""
    try:
        gid = grp.getgrnam(user).gr_gid if os.geteuid() == 0 else None
    except KeyError:
        gid = None
    if gid is not None:
        os.chown(path, 0, gid)
        os.chmod(path, 0o640)
    else:
        os.chmod(path, 0o600)


def give_to_gateway_user(path, user=GATEWAY_USER):
    """A secret file that must be private to its owner (a Google service account key): as
    root, the gateway user's own, 0600. Not root: ours, 0600."""
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return
        os.chown(path, pw.pw_uid, pw.pw_gid)


def traversable(directory):
    """Directories we created (mkdtemp and pytest make them 0700) on the way to directory get
    o+x, so an unprivileged user (Dovecot's, the gateway's) can reach the files it needs in
    it. Stops at the first directory that is not ours."""
    path = os.path.abspath(directory)
    while os.path.dirname(path) != path:
        st = os.stat(path)
        if st.st_uid != os.geteuid():
            break
        if not st.st_mode & 0o001:
            os.chmod(path, (st.st_mode & 0o777) | 0o111)
        path = os.path.dirname(path)
