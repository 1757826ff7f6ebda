from twisted.application.service import ServiceMaker

acqs = ServiceMaker(
    "acqs",
    "acqs.tap",
    "Asterisk Central Queue System: send queued AMI actions, record call progress",
    "acqs",
)
