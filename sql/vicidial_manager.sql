-- vicidial_manager: the queue that GUI clients write to and acqs reads.
--
-- This is VICIdial 2.14's own table, column for column: same names, types
-- and order, same indexes (2.14 widened cmd_line_d to 200 characters, for
-- MixMonitor's options and file names, and has cmd_line_i and cmd_line_j at
-- 50).  GUI clients INSERT into it positionally (19 values,
-- '' for man_id), so a column must never be added, dropped or reordered
-- here; acqs keeps what it records beyond these columns in acqs.sql.
--
-- Two deliberate differences from VICIdial's CREATE: IF NOT EXISTS, so that
-- `acqs initdb` can run again on a VICIdial database and leave an existing
-- table alone, and ENGINE=InnoDB instead of MyISAM, so that claims lock rows
-- (SELECT ... FOR UPDATE SKIP LOCKED).  acqs also works on VICIdial's MyISAM
-- table: it then serialises claims with GET_LOCK and logs a warning.
--
-- Strict mode: the positional INSERT gives '' for man_id.  With sql_mode=''
-- (what VICIdial deployments set) MariaDB stores 0 there, which means "next
-- AUTO_INCREMENT value", with a warning.  Under STRICT_TRANS_TABLES or
-- STRICT_ALL_TABLES (MariaDB's default since 10.2.4) the same INSERT fails
-- with error 1366 "Incorrect integer value: '' for column ... man_id":
-- servers that GUI clients write to must run with a non-strict sql_mode.

CREATE TABLE IF NOT EXISTS vicidial_manager (
    man_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    uniqueid VARCHAR(20),
    entry_date DATETIME,
    status ENUM('NEW','QUEUE','SENT','UPDATED','DEAD'),
    response ENUM('Y','N'),
    server_ip VARCHAR(15) NOT NULL,
    channel VARCHAR(100),
    action VARCHAR(20),
    callerid VARCHAR(20),
    cmd_line_b VARCHAR(100),
    cmd_line_c VARCHAR(100),
    cmd_line_d VARCHAR(200),
    cmd_line_e VARCHAR(100),
    cmd_line_f VARCHAR(100),
    cmd_line_g VARCHAR(100),
    cmd_line_h VARCHAR(100),
    cmd_line_i VARCHAR(50),
    cmd_line_j VARCHAR(50),
    cmd_line_k VARCHAR(100),
    INDEX (callerid),
    INDEX (uniqueid),
    INDEX serverstat (server_ip, status)
) ENGINE=InnoDB;
