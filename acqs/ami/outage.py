"""
What an AMI outage is, told from the error that showed it, and how long to
wait before logging in again after Asterisk refused a login.

The causes are a small fixed set, so that the status page, C{acqs health}
and a metric label can name them:

  - C{unreachable}: no connection (refused, no route, DNS, connect timeout);
  - C{no_answer}: connected, but no greeting or login answer in time, or
    the connection closed during the login;
  - C{not_asterisk}: what answered is not an Asterisk manager;
  - C{login_refused}: Asterisk said "Authentication failed": the user or
    its secret is wrong (or the address is not permitted);
  - C{login_failed}: Asterisk refused the login otherwise;
  - C{shutting_down}: Asterisk answered an action without running it, for
    it is shutting down (the session reads that answer and tells).
"""

from .errors import AMIConnectionLost, ActionTimeout, LoginFailed, NotAsterisk, StepTimeout

UNREACHABLE, NO_ANSWER, NOT_ASTERISK = "unreachable", "no_answer", "not_asterisk"
LOGIN_REFUSED, LOGIN_FAILED = "login_refused", "login_failed"
SHUTTING_DOWN = "shutting_down"
CAUSES = (UNREACHABLE, NO_ANSWER, NOT_ASTERISK, LOGIN_REFUSED, LOGIN_FAILED, SHUTTING_DOWN)

# Asterisk's answer to a bad user, secret or address.
BAD_LOGIN = "Authentication failed"
# After refused logins: 1, 2, 4 ... seconds, then every minute.  Asterisk
# logs each refusal, and fail2ban may ban a box that keeps trying.
REFUSED_FIRST, REFUSED_MOST = 1.0, 60.0


def cause(error: BaseException) -> str:
    """The cause of an outage that C{error}, of reaching or logging in to AMI, shows."""
    if isinstance(error, LoginFailed):
        return LOGIN_REFUSED if error.reason == BAD_LOGIN else LOGIN_FAILED
    if isinstance(error, NotAsterisk):
        return NOT_ASTERISK
    if isinstance(error, (ActionTimeout, AMIConnectionLost)):
        return NO_ANSWER
    if isinstance(error, StepTimeout) and error.step != "AMI connection":
        return NO_ANSWER
    return UNREACHABLE


def refusedLoginDelay(refusals: int) -> float:
    """Seconds to wait after the C{refusals}-th refused login in a row."""
    return min(REFUSED_MOST, REFUSED_FIRST * 2.0 ** max(0, refusals - 1))
