-- acqs' own records on MySQL/MariaDB, kept beside vicidial_manager and keyed
-- by its man_id (vicidial_manager itself is never altered: GUI clients
-- INSERT into it positionally).  Times come from the database clock.
--
-- acqs_action: one row per vicidial_manager row that acqs has handled.
--   claimed_by     the acqs instance that claimed the row (NULL once it went
--                  back to NEW)
--   claimed_at     when it was claimed (moved NEW -> QUEUE)
--   sending_at     when the sender said the action may reach Asterisk from
--                  now on; a row without it was certainly never sent
--   answered_at    when Asterisk's answer (or the lack of one) was recorded
--   outcome        queued, sending, sent, released, refused, dead_check,
--                  requeued or unknown (see acqs/store/sqlstore.py)
--   response_text  Asterisk's message, or why no answer came
--   reason         why the row was refused, released, requeued or not sent
--   attempts       how many times the row went back to NEW
--
-- acqs_instance: the last sign of life of each acqs instance serving a
-- server_ip; QUEUE rows of an instance silent for too long are recovered.

CREATE TABLE IF NOT EXISTS acqs_action (
    man_id INT(9) UNSIGNED NOT NULL PRIMARY KEY,
    claimed_by VARCHAR(64),
    claimed_at DATETIME(6),
    sending_at DATETIME(6),
    answered_at DATETIME(6),
    outcome VARCHAR(16) NOT NULL,
    response_text VARCHAR(255),
    reason VARCHAR(255),
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    INDEX outcome (outcome)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS acqs_instance (
    server_ip VARCHAR(15) NOT NULL,
    instance VARCHAR(64) NOT NULL,
    heartbeat_at DATETIME(6) NOT NULL,
    PRIMARY KEY (server_ip, instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
