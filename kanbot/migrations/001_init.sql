-- 001: the whole agent-facing schema. IDs are UUID v4 text; times are RFC 3339
-- UTC text with fixed-width microseconds, so text order is time order.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL COLLATE NOCASE UNIQUE,
	username      TEXT NOT NULL COLLATE NOCASE UNIQUE,
	password_hash TEXT,
	language      TEXT NOT NULL DEFAULT 'en',
	settings      TEXT NOT NULL DEFAULT '{}',
	is_active     INTEGER NOT NULL DEFAULT 1,
	is_admin      INTEGER NOT NULL DEFAULT 0,
	is_banned     INTEGER NOT NULL DEFAULT 0,
	banned_at     TEXT,
	created_at    TEXT NOT NULL
);

-- Only the SHA-256 hex of a key is stored; the UNIQUE constraint is the
-- lookup index.
CREATE TABLE api_keys (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	key_hash    TEXT NOT NULL UNIQUE,
	permissions TEXT NOT NULL DEFAULT '{}',
	is_agent    INTEGER NOT NULL DEFAULT 1,
	created_at  TEXT NOT NULL,
	last_used   TEXT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE spaces (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	type       TEXT NOT NULL CHECK (type IN ('personal', 'company', 'agent')),
	owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	settings   TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL
);
CREATE INDEX spaces_owner ON spaces(owner_id);

CREATE TABLE space_members (
	space_id  TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
	user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role      TEXT NOT NULL CHECK (role IN ('owner', 'member', 'guest')),
	joined_at TEXT NOT NULL,
	PRIMARY KEY (space_id, user_id)
);
CREATE INDEX space_members_user ON space_members(user_id);

CREATE TABLE columns (
	id         TEXT PRIMARY KEY,
	space_id   TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	category   TEXT NOT NULL CHECK (category IN ('default', 'inbox', 'in_progress', 'waiting', 'review', 'archive')),
	position   INTEGER NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX columns_space ON columns(space_id, position);

CREATE TABLE cards (
	id                TEXT PRIMARY KEY,
	column_id         TEXT NOT NULL REFERENCES columns(id) ON DELETE CASCADE,
	name              TEXT NOT NULL,
	description       TEXT,
	start_date        TEXT,
	end_date          TEXT,
	position          INTEGER NOT NULL,
	created_by        TEXT REFERENCES users(id) ON DELETE SET NULL,
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL,
	column_entered_at TEXT NOT NULL
);
CREATE INDEX cards_column ON cards(column_id, position);

CREATE TABLE tags (
	id       TEXT PRIMARY KEY,
	space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
	name     TEXT NOT NULL,
	color    TEXT NOT NULL,
	UNIQUE (space_id, name)
);

CREATE TABLE card_tags (
	card_id TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
	tag_id  TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
	PRIMARY KEY (card_id, tag_id)
);

CREATE TABLE card_assignees (
	card_id TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (card_id, user_id)
);
CREATE INDEX card_assignees_user ON card_assignees(user_id);

CREATE TABLE tasks (
	id         TEXT PRIMARY KEY,
	card_id    TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
	text       TEXT NOT NULL,
	completed  INTEGER NOT NULL DEFAULT 0,
	position   INTEGER NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX tasks_card ON tasks(card_id, position);

CREATE TABLE comments (
	id         TEXT PRIMARY KEY,
	card_id    TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	content    TEXT NOT NULL,
	actor_type TEXT NOT NULL,
	actor_name TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	is_edited  INTEGER NOT NULL DEFAULT 0,
	is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX comments_card ON comments(card_id, created_at);

CREATE TABLE card_history (
	id         TEXT PRIMARY KEY,
	card_id    TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
	action     TEXT NOT NULL CHECK (action IN ('created', 'updated', 'moved')),
	changes    TEXT NOT NULL DEFAULT '{}',
	actor_type TEXT NOT NULL,
	actor_name TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX card_history_card ON card_history(card_id, created_at);
