"""
The CLI commands the simulator answers through the Command action:
C{core show version}, C{core show channels [concise]}, C{core show uptime
[seconds]}, C{meetme list <conf> [concise]}, C{meetme (un)mute|kick <conf>
<user|all>}.  Anything else gets Asterisk's "No such command" line.

Simplified: Asterisk's C{find_best} (the part of an unknown command quoted
back in the error) is approximated by the words up to and including the
first that starts no command the simulator knows, the first word always
counting as known (real Asterisk has hundreds of commands).
"""

from typing import List, Tuple

from .calls import PBX
from .dialects import Dialect

_KNOWN = (("core", "show", "version"), ("core", "show", "channels"), ("core", "show", "uptime"),
          ("meetme", "list"), ("meetme", "mute"), ("meetme", "unmute"), ("meetme", "kick"),
          ("meetme", "lock"), ("meetme", "unlock"))

MEETME_USAGE = ["Usage: meetme (un)lock|(un)mute|kick|list [concise] <confno> <usernumber>",
                "       Executes a command for the conference or on a conferee"]


def _bestMatch(words: List[str]) -> str:
    best: List[str] = []
    for i, word in enumerate(words):
        best.append(word)
        if i == 0:
            continue
        prefix = tuple(w.lower() for w in best)
        if not any(known[: len(prefix)] == prefix for known in _KNOWN):
            break
    return " ".join(best)


def _uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "<1 second"
    parts = []
    for size, unit in ((31536000, "year"), (604800, "week"), (86400, "day"), (3600, "hour"),
                       (60, "minute"), (1, "second")):
        count, s = divmod(s, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return ", ".join(parts)


def run(command: str, pbx: PBX, dialect: Dialect, now: float,
        meetme: bool = True) -> Tuple[bool, List[str]]:
    """Run a CLI command: C{(known, output lines)}; C{meetme} when app_meetme is loaded."""
    words = command.split()
    lowered = [w.lower() for w in words]
    if lowered[:1] == ["show"] and dialect.oldCommandNames:
        lowered = ["core"] + lowered  # 1.4 still takes the deprecated 1.2 names
    if lowered == ["core", "show", "version"]:
        return True, [dialect.version]
    if lowered == ["core", "show", "channels"]:
        return True, _channels(pbx, dialect)
    if lowered == ["core", "show", "channels", "concise"]:
        return True, [dialect.concise(ch, now) for ch in pbx.channels.values()]
    if lowered[:3] == ["core", "show", "uptime"] and len(lowered) <= 4:
        up = now - pbx.startTime
        if lowered[3:] == ["seconds"]:
            return True, [f"System uptime: {int(up)}", f"Last reload: {int(up)}"]
        return True, [f"System uptime: {_uptime(up)}", f"Last reload: {_uptime(up)}"]
    if meetme and lowered[:1] == ["meetme"] and len(lowered) >= 2:
        return True, _meetme(lowered[1:], pbx, dialect, now)
    return False, [dialect.noSuchCommand(command.strip(), _bestMatch(words))]


def _channels(pbx: PBX, dialect: Dialect) -> List[str]:
    fmt = dialect.chanlistFormat
    lines = [fmt.format("Channel", "Location", "State", "Application(Data)")]
    for ch in pbx.channels.values():
        if ch.context and ch.exten:
            location = f"{ch.exten}@{ch.context}:{ch.priority}"
        else:
            location = "(None)"
        app = f"{ch.application}({ch.appData})" if ch.application else "(None)"
        lines.append(fmt.format(ch.name, location, ch.state, app))
    return lines + dialect.chanlistTotals(len(pbx.channels), pbx.activeCalls(),
                                          pbx.processedCalls)


def _meetme(args: List[str], pbx: PBX, dialect: Dialect, now: float) -> List[str]:
    verb = args[0]
    if verb == "list" and len(args) in (2, 3):
        concise = args[2:] == ["concise"]
        if not pbx.conferences:
            return [] if concise else [dialect.noConferences]
        conference = pbx.conferences.get(args[1])
        if conference is None:
            return [] if concise else [f"No such conference: {args[1]}."]
        users = sorted(conference.users.values(), key=lambda u: u.number)
        if concise:
            return [dialect.meetmeConcise(u, now) for u in users]
        return [dialect.meetmeLine(u, now) for u in users] + [
            f"{len(users)} users in that conference."]
    if verb in ("mute", "unmute") and len(args) == 3:
        pbx.muteConferenceUser(args[1], args[2], verb == "mute")
        return []
    if verb in ("kick", "lock", "unlock") and len(args) in (2, 3):
        return []
    return list(MEETME_USAGE)
