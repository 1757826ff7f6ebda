"""
A claimed row on its way to Asterisk: marked sending (L{markSending}), or
handed back (L{release}), then Asterisk's answer recorded (L{recordSent}).

markSending comes right before the action is written to AMI, as VICIdial's
sender marks SENT when it dispatches a row (a claim may mark its first rows
itself, for sessions ready to send them); recordSent then adds Asterisk's
answer (C{response}, the text) without touching the status.

Claims belong to their claimant.  Every claim has a token of its own, kept
in acqs_action.claim_token; markSending, recordSent and release act on
a row only while its record still holds the caller's token (a
compare-and-set), and markSending returns the rows it really marked.  A
claim taken back by recovery (claimant silent for too long) or claimed
again by someone else is lost to its first claimant, which must not send
it: no row is ever sent by two instances.
"""

from typing import Dict, List, Sequence

from .records import QUEUE, SENT, Claim, SendResult
from .transaction import ACTION_ID, TEXT, Transaction, caseOf, chunks, cut, marks


def markSending(t: Transaction, claims: Sequence[Claim]) -> List[int]:
    """Mark those of C{claims} still queued under their token sending: the ones it marked."""
    marked = t.ownRecords(claims, ("queued",))
    for ids in chunks(marked):
        t.write(
            "UPDATE acqs_action SET sending_at = {now}, outcome = 'sending'"
            " WHERE man_id IN ({ids})",
            ids,
            ids=marks(len(ids)),
        )
    t.setStatus(marked, SENT, (QUEUE,))
    return marked


def release(t: Transaction, claims: Sequence[Claim], reason: str) -> List[int]:
    """Those of C{claims} never written to AMI back to NEW: the ones released."""
    # Still QUEUE, or marked SENT (or half-marked) but never written.
    released = t.ownRecords(claims, ("queued", "sending"), (QUEUE, SENT))
    t.requeue([(man_id, reason) for man_id in released], "released")
    return released


def recordSent(t: Transaction, results: Sequence[SendResult]) -> List[int]:
    """Asterisk's answers, on the rows whose claim still holds: the man_ids recorded."""
    responses = recordAnswers(t, results)
    writeResponses(t, responses)
    return sorted(responses)


def recordAnswers(t: Transaction, results: Sequence[SendResult]) -> Dict[int, str]:
    """
    Asterisk's answers in acqs_action, on the rows whose claim still holds:
    their vicidial_manager C{response} (Y or N), by man_id, for
    L{writeResponses} (or a write of the rows' own that includes it).
    """
    # Each claim's answers in one guarded UPDATE; only where it changed
    # fewer rows than it named is it asked which (the others' claims lost).
    accepted: List[int] = []
    byClaim: Dict[str, List[SendResult]] = {}
    for r in results:
        byClaim.setdefault(r.claim, []).append(r)
    for token, group in byClaim.items():
        for chunk in chunks(group):
            ids = [r.man_id for r in chunk]
            answered = [r.man_id for r in chunk if r.callAnswered]
            params = ([v for r in chunk for v in (r.man_id, cut(r.text, TEXT))]
                      + [v for r in chunk
                         for v in (r.man_id, cut(r.actionID, ACTION_ID) or None)]
                      + answered + answered + ids + [token])
            changed = t.write(
                "UPDATE acqs_action SET answered_at = {now}, outcome = 'sent',"
                " response_text = {texts}, action_id = {actionIDs},"
                " call_answered_at = CASE WHEN man_id IN ({answered}) THEN {now} END,"
                # Answered: the call is up, unless the listener saw it end first.
                " live = CASE WHEN dead_at IS NOT NULL THEN NULL"
                " WHEN man_id IN ({answered}) THEN COALESCE(live, 1) ELSE live END"
                " WHERE man_id IN ({ids}) AND claim_token {is} %s"
                " AND outcome IN ('sending', 'unknown', 'sent')",
                params,
                texts=caseOf(len(chunk)),
                actionIDs=caseOf(len(chunk)),
                answered=marks(len(answered)) if answered else "NULL",
                ids=marks(len(ids)),
            )
            if changed == len(ids):
                accepted += ids
            else:
                accepted += [m for (m,) in t.select(
                    "SELECT man_id FROM acqs_action WHERE man_id IN ({ids})"
                    " AND claim_token {is} %s AND outcome = 'sent'",
                    ids + [token], ids=marks(len(ids)))]
    mine = set(accepted)
    return {r.man_id: "Y" if r.answered else "N" for r in results if r.man_id in mine}


def writeResponses(t: Transaction, responses: Dict[int, str]) -> None:
    """vicidial_manager's C{response} of answered rows (a QUEUE row becomes SENT)."""
    for response in ("Y", "N"):
        ids = sorted(m for m, r in responses.items() if r == response)
        for chunk in chunks(ids):
            t.write(
                "UPDATE vicidial_manager SET response = %s,"
                " status = CASE WHEN status = 'QUEUE' THEN 'SENT' ELSE status END"
                " WHERE man_id IN ({ids})",
                [response] + list(chunk),
                ids=marks(len(chunk)),
            )
