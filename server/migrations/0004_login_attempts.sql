-- Password login attempts per email (trimmed, lower-cased) in the current
-- window, whether or not an account has that email, so that throttling says
-- nothing about which emails exist. A successful login deletes its row; rows
-- of windows that ended are deleted as logins go.
CREATE TABLE login_attempts (
    email_key       text PRIMARY KEY,
    attempts        integer NOT NULL,
    window_started  timestamptz NOT NULL
);
CREATE INDEX login_attempts_window_idx ON login_attempts (window_started);
