"""
What can go wrong with an AMI action.  No text here ever holds a secret:
errors carry the action's name and Asterisk's answer, never what was sent.
"""

from typing import Optional

from .message import Message


class AMIError(Exception):
    """Asterisk answered C{Response: Error}."""

    def __init__(self, action: str, response: Message):
        self.action = action
        self.response = response
        super().__init__(action, self.reason)

    @property
    def reason(self) -> str:
        return self.response.get("Message") or "(no message)"

    def __str__(self) -> str:
        return f"AMI action {self.action} failed: {self.reason}"


class LoginFailed(AMIError):
    """Asterisk refused the login."""

    def __init__(self, username: str, response: Message):
        self.username = username
        super().__init__("Login", response)

    def __str__(self) -> str:
        return f"AMI login as {self.username!r} refused: {self.reason}"


class ActionTimeout(Exception):
    """No response came within the action's timeout."""

    def __init__(self, action: str, timeout: float):
        self.action = action
        self.timeout = timeout
        super().__init__(action, timeout)

    def __str__(self) -> str:
        return f"AMI action {self.action} got no response within {self.timeout:g} s"


class StepTimeout(Exception):
    """A step of reaching AMI (connecting, the greeting) took longer than its timeout."""

    def __init__(self, step: str, timeout: float):
        self.step = step
        self.timeout = timeout
        super().__init__(step, timeout)

    def __str__(self) -> str:
        return f"{self.step}: nothing within {self.timeout:g} s"


class AMIConnectionLost(Exception):
    """The connection closed before the action was answered."""

    def __init__(self, action: str, reason: Optional[str] = None):
        self.action = action
        self.reason = reason
        super().__init__(action, reason)

    def __str__(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"AMI connection lost before {self.action} was answered{why}"


class NotAsterisk(Exception):
    """The peer's greeting is not an Asterisk Call Manager greeting."""

    def __init__(self, greeting: str):
        self.greeting = greeting
        super().__init__(greeting)

    def __str__(self) -> str:
        return f"the peer is not an Asterisk manager: it greeted {self.greeting[:80]!r}"
