-- The queue store on SQLite, for a single box and the demo: VICIdial's
-- vicidial_manager table and acqs' own tables in one file.
--
-- vicidial_manager has VICIdial's columns, in VICIdial's order and with its
-- names (never add, drop or reorder one: GUI clients INSERT positionally).
-- SQLite has no ENUM: status and response are TEXT with CHECK constraints.
-- Text columns compare case-insensitively (COLLATE NOCASE), as they do
-- under MySQL's default collations.  GUI clients INSERT '' for man_id and
-- MySQL (outside strict mode) gives the row the next number: so does the
-- trigger below, for '', 0 or NULL.  (man_id is INT, not INTEGER, so that
-- it is not the rowid, which would refuse '' before any trigger ran.)
--
-- acqs_action and acqs_instance hold what acqs records beyond VICIdial's
-- columns; acqs.sql explains each column.  Times are local-time text
-- ('YYYY-MM-DD HH:MM:SS.SSS') from SQLite's clock.

CREATE TABLE IF NOT EXISTS vicidial_manager (
    man_id INT PRIMARY KEY NOT NULL,
    uniqueid VARCHAR(20) COLLATE NOCASE,
    entry_date DATETIME,
    status TEXT CHECK (status IN ('NEW', 'QUEUE', 'SENT', 'UPDATED', 'DEAD')),
    response TEXT CHECK (response IN ('Y', 'N')),
    server_ip VARCHAR(15) NOT NULL COLLATE NOCASE,
    channel VARCHAR(100) COLLATE NOCASE,
    action VARCHAR(20) COLLATE NOCASE,
    callerid VARCHAR(20) COLLATE NOCASE,
    cmd_line_b VARCHAR(100) COLLATE NOCASE,
    cmd_line_c VARCHAR(100) COLLATE NOCASE,
    cmd_line_d VARCHAR(200) COLLATE NOCASE,
    cmd_line_e VARCHAR(100) COLLATE NOCASE,
    cmd_line_f VARCHAR(100) COLLATE NOCASE,
    cmd_line_g VARCHAR(100) COLLATE NOCASE,
    cmd_line_h VARCHAR(100) COLLATE NOCASE,
    cmd_line_i VARCHAR(50) COLLATE NOCASE,
    cmd_line_j VARCHAR(50) COLLATE NOCASE,
    cmd_line_k VARCHAR(100) COLLATE NOCASE
);
CREATE TRIGGER IF NOT EXISTS vicidial_manager_next_man_id
BEFORE INSERT ON vicidial_manager
WHEN NEW.man_id IS NULL OR NEW.man_id IN ('', 0)
BEGIN
    INSERT INTO vicidial_manager VALUES (
        (SELECT COALESCE(MAX(man_id), 0) + 1 FROM vicidial_manager),
        NEW.uniqueid, NEW.entry_date, NEW.status, NEW.response, NEW.server_ip, NEW.channel,
        NEW.action, NEW.callerid, NEW.cmd_line_b, NEW.cmd_line_c, NEW.cmd_line_d,
        NEW.cmd_line_e, NEW.cmd_line_f, NEW.cmd_line_g, NEW.cmd_line_h, NEW.cmd_line_i,
        NEW.cmd_line_j, NEW.cmd_line_k);
    SELECT RAISE(IGNORE);
END;
CREATE INDEX IF NOT EXISTS callerid ON vicidial_manager (callerid);
CREATE INDEX IF NOT EXISTS uniqueid ON vicidial_manager (uniqueid);
CREATE INDEX IF NOT EXISTS serverstat ON vicidial_manager (server_ip, status);

CREATE TABLE IF NOT EXISTS acqs_action (
    man_id INTEGER NOT NULL PRIMARY KEY,
    server_ip VARCHAR(15) COLLATE NOCASE,
    claimed_by VARCHAR(64),
    claim_token CHAR(16),
    claimed_at TEXT,
    sending_at TEXT,
    answered_at TEXT,
    outcome VARCHAR(16) NOT NULL,
    response_text VARCHAR(255),
    reason VARCHAR(255),
    attempts INTEGER NOT NULL DEFAULT 0,
    action_id VARCHAR(40),
    call_answered_at TEXT,
    uniqueid VARCHAR(150),
    updated_at TEXT,
    dead_at TEXT,
    hangup_cause VARCHAR(64),
    live INTEGER
);
CREATE INDEX IF NOT EXISTS outcome ON acqs_action (outcome);
CREATE INDEX IF NOT EXISTS acqs_action_uniqueid ON acqs_action (uniqueid);
CREATE INDEX IF NOT EXISTS acqs_action_sent ON acqs_action (server_ip, sending_at);
CREATE INDEX IF NOT EXISTS acqs_action_live ON acqs_action (server_ip, live);

CREATE TABLE IF NOT EXISTS acqs_instance (
    server_ip VARCHAR(15) NOT NULL,
    instance VARCHAR(64) NOT NULL,
    heartbeat_at TEXT NOT NULL,
    host VARCHAR(255),
    pid INTEGER,
    started_at TEXT,
    PRIMARY KEY (server_ip, instance)
);
