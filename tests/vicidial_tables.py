"""
VICIdial 2.14's own tables that the listener's duties write (schema 1720,
as /work/notes/vicidial-facts.md section 3 describes them), for tests:
written here from their column lists, MyISAM as VICIdial makes them.  acqs
never creates them (acqs initdb makes only its own).

    createVICIdialTables(db)                      # all of them
    createVICIdialTables(db, ["vicidial_dtmf_log"])
    createVICIdialTables(db, oldPhones=True)      # phones before schema 1636
"""

from typing import Dict, Iterable, Optional

# phones holds about a hundred columns in VICIdial; these are those the
# listener reads or writes, its keys, and a few others a phone row needs.
_PHONE_STATUS = """,
    peer_status ENUM('UNKNOWN','REGISTERED','UNREGISTERED','REACHABLE','LAGGED','UNREACHABLE')
        COLLATE utf8_unicode_ci NOT NULL DEFAULT 'UNKNOWN',
    ping_time SMALLINT(6) DEFAULT NULL"""

TABLES: Dict[str, str] = {
    "vicidial_dtmf_log": """
CREATE TABLE vicidial_dtmf_log (
    dtmf_id INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
    dtmf_time DATETIME,
    channel VARCHAR(100) NOT NULL,
    server_ip VARCHAR(15) NOT NULL,
    uniqueid VARCHAR(20) DEFAULT '',
    digit VARCHAR(1) DEFAULT '',
    direction ENUM('Received','Sent') DEFAULT 'Received',
    state ENUM('BEGIN','END') DEFAULT 'BEGIN',
    PRIMARY KEY (dtmf_id),
    KEY vicidial_dtmf_uniqueid_key (uniqueid)
) ENGINE=MyISAM CHARSET=utf8 COLLATE=utf8_unicode_ci""",
    "vicidial_peer_event_log": """
CREATE TABLE vicidial_peer_event_log (
    peer_event_id INT(9) UNSIGNED NOT NULL AUTO_INCREMENT,
    event_type ENUM('UNKNOWN','REGISTERED','UNREGISTERED','REACHABLE','LAGGED','UNREACHABLE',
        'RTPDISCONNECT','CRITICALTIMEOUT') DEFAULT 'UNKNOWN',
    event_date DATETIME(6) NOT NULL,
    channel VARCHAR(100) DEFAULT '',
    server_ip VARCHAR(15) NOT NULL,
    host_ip VARCHAR(15) DEFAULT '',
    port SMALLINT(6) DEFAULT NULL,
    channel_type ENUM('IAX2','SIP','PJSIP') DEFAULT NULL,
    peer VARCHAR(100) DEFAULT '',
    data VARCHAR(255) DEFAULT '',
    PRIMARY KEY (peer_event_id),
    KEY event_date (event_date),
    KEY peer (peer),
    KEY channel (channel)
) ENGINE=MyISAM DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci""",
    "phones": """
CREATE TABLE phones (
    extension VARCHAR(100),
    dialplan_number VARCHAR(20),
    voicemail_id VARCHAR(10),
    phone_ip VARCHAR(15),
    login VARCHAR(15),
    server_ip VARCHAR(15),
    protocol ENUM('SIP','PJSIP','Zap','IAX2','EXTERNAL') DEFAULT 'SIP'{status},
    INDEX (server_ip),
    INDEX (voicemail_id),
    INDEX (dialplan_number),
    UNIQUE INDEX extenserver (extension, server_ip)
) ENGINE=MyISAM""",
    "vicidial_cpd_log": """
CREATE TABLE vicidial_cpd_log (
    cpd_id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    channel VARCHAR(100) NOT NULL,
    uniqueid VARCHAR(20),
    callerid VARCHAR(20),
    server_ip VARCHAR(15) NOT NULL,
    lead_id INT(9) UNSIGNED,
    event_date DATETIME,
    result VARCHAR(20),
    status ENUM('NEW','PROCESSED') DEFAULT 'NEW',
    cpd_seconds DECIMAL(7,2) DEFAULT '0',
    INDEX (uniqueid),
    INDEX (callerid),
    INDEX (lead_id)
) ENGINE=MyISAM""",
    "vicidial_dial_log": """
CREATE TABLE vicidial_dial_log (
    caller_code VARCHAR(30) NOT NULL,
    lead_id INT(9) UNSIGNED DEFAULT '0',
    server_ip VARCHAR(15),
    call_date DATETIME,
    extension VARCHAR(100) DEFAULT '',
    channel VARCHAR(100) DEFAULT '',
    context VARCHAR(100) DEFAULT '',
    timeout MEDIUMINT(7) UNSIGNED DEFAULT '0',
    outbound_cid VARCHAR(100) DEFAULT '',
    sip_hangup_cause SMALLINT(4) UNSIGNED DEFAULT '0',
    sip_hangup_reason VARCHAR(50) DEFAULT '',
    uniqueid VARCHAR(20) DEFAULT '',
    INDEX (caller_code),
    INDEX (lead_id),
    INDEX (call_date)
) ENGINE=MyISAM""",
    "vicidial_carrier_log": """
CREATE TABLE vicidial_carrier_log (
    uniqueid VARCHAR(20) PRIMARY KEY NOT NULL,
    call_date DATETIME,
    server_ip VARCHAR(15) NOT NULL,
    lead_id INT(9) UNSIGNED,
    hangup_cause TINYINT(1) UNSIGNED DEFAULT '0',
    dialstatus VARCHAR(16),
    channel VARCHAR(100),
    dial_time SMALLINT(3) UNSIGNED DEFAULT '0',
    answered_time SMALLINT(4) UNSIGNED DEFAULT '0',
    sip_hangup_cause SMALLINT(4) UNSIGNED DEFAULT '0',
    sip_hangup_reason VARCHAR(50) DEFAULT '',
    caller_code VARCHAR(30) DEFAULT '',
    INDEX (call_date),
    INDEX (lead_id)
) ENGINE=MyISAM""",
}


def createVICIdialTables(db, names: Optional[Iterable[str]] = None,
                         oldPhones: bool = False) -> None:
    """
    Create VICIdial's duty tables C{names} (all by default) in the scratch
    database C{db} (MariaDB); with C{oldPhones}, phones as before schema
    1636, without peer_status and ping_time.
    """
    for name in names or TABLES:
        db.execute(TABLES[name].format(status="" if oldPhones else _PHONE_STATUS).strip())
