-- acqs' own records on MySQL/MariaDB, kept beside vicidial_manager and keyed
-- by its man_id (vicidial_manager itself is never altered: GUI clients
-- INSERT into it positionally).  Times come from the database clock.
--
-- acqs_action: one row per vicidial_manager row that acqs has handled.
--   server_ip         the row's server_ip (as in vicidial_manager)
--   claimed_by        the acqs instance that claimed the row (NULL once it
--                     went back to NEW)
--   claim_token       names that one claim: the sender marks, records and
--                     releases a row only while the token is still its own
--   claimed_at        when it was claimed (moved NEW -> QUEUE)
--   sending_at        when the sender said the action may reach Asterisk
--                     from now on; a row without it was certainly never sent
--   answered_at       when Asterisk's answer (or the lack of one) was recorded
--   outcome           queued, sending, sent, released, refused, dead_check,
--                     requeued, unknown, ended_unseen or external (see
--                     acqs/store/sqlstore.py)
--   response_text     Asterisk's message, or why no answer came
--   reason            why the row was refused, released, requeued, not sent
--                     or ended unseen
--   attempts          how many times the row went back to NEW
--   action_id         the ActionID acqs sent the action with
--   call_answered_at  when a synchronous Originate was answered Success,
--                     which means its call was answered
--   uniqueid          the whole uniqueid of the channel the row was UPDATED
--                     with (vicidial_manager.uniqueid holds 20 characters;
--                     Asterisk's systemname makes uniqueids longer)
--   updated_at        when the row was last UPDATED
--   dead_at           when the row became DEAD through its call
--   hangup_cause      the hangup's cause, e.g. "16 Normal Clearing"
--   live              1 while acqs holds the row's call for up (ringing or
--                     answered) and waits for its hangup, else 0 or NULL;
--                     the listener's catch-up reads only the rows at 1
--
-- acqs_instance: the last sign of life of each acqs instance serving a
-- server_ip, and where it runs; QUEUE rows of an instance silent for too
-- long are recovered, and a second process may not take a live name.
--
-- `acqs initdb` adds the columns and indexes that an older acqs_action or
-- acqs_instance lacks.

CREATE TABLE IF NOT EXISTS acqs_action (
    man_id INT(9) UNSIGNED NOT NULL PRIMARY KEY,
    server_ip VARCHAR(15),
    claimed_by VARCHAR(64),
    claim_token CHAR(16),
    claimed_at DATETIME(6),
    sending_at DATETIME(6),
    answered_at DATETIME(6),
    outcome VARCHAR(16) NOT NULL,
    response_text VARCHAR(255),
    reason VARCHAR(255),
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    action_id VARCHAR(40),
    call_answered_at DATETIME(6),
    uniqueid VARCHAR(150),
    updated_at DATETIME(6),
    dead_at DATETIME(6),
    hangup_cause VARCHAR(64),
    live TINYINT UNSIGNED,
    INDEX outcome (outcome),
    INDEX uniqueid (uniqueid),
    INDEX sent (server_ip, sending_at),
    INDEX live (server_ip, live)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS acqs_instance (
    server_ip VARCHAR(15) NOT NULL,
    instance VARCHAR(64) NOT NULL,
    heartbeat_at DATETIME(6) NOT NULL,
    host VARCHAR(255),
    pid INT UNSIGNED,
    started_at DATETIME(6),
    PRIMARY KEY (server_ip, instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
