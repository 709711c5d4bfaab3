-- Files shoppers attach to their messages (chatd/files/, docs/operations.md "Attachments").
--
-- * chat_attachments: one row per uploaded file, whatever the storage. It is written when an
--   upload starts (state 'uploading'; its id is not handed out yet) and made 'ready' when the
--   file is stored and checked; only then does the client learn its id. A message takes it by
--   setting message_id, once. Deleted with its session (ON DELETE CASCADE): the retention
--   cleanup and `chatd cleanup` delete files with their sessions.
-- * chat_attachment_chunks: the bytes, when attachments.storage = "postgres": each variant
--   (the original; an image's thumbnail; an image's upload before it was re-encoded) in chunks
--   of chunk_bytes, so writes and reads stream and a Range request reads only its chunks. With
--   storage = "disk" the bytes are files named by the attachment's id, never by the client's
--   name, and this table stays empty.
-- * chat_messages.attachments: what each message carries, as the wire shows it (id, name, type,
--   size, kind, width, height, thumbnail), copied from chat_attachments when the message is
--   stored: a file's description never changes, and every read of messages (history, events,
--   resume) gets them without a join. NULL when the message has none.
-- * chat_secrets: the key that signs file URLs when attachments.url_secret is not set,
--   generated once by the first chatd, so every process signs alike.

CREATE TABLE chat_attachments (
    id           text PRIMARY KEY,
    session_id   text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    message_id   text REFERENCES chat_messages (id) ON DELETE CASCADE,
    state        text NOT NULL DEFAULT 'uploading' CHECK (state IN ('uploading', 'ready')),
    storage      text NOT NULL CHECK (storage IN ('postgres', 'disk')),
    chunk_bytes  integer NOT NULL,                 -- the chunk size its bytes were stored in
    name         text NOT NULL DEFAULT '',         -- sanitised for display; never a path
    type         text NOT NULL DEFAULT '',         -- the MIME type its bytes were sniffed as
    kind         text NOT NULL DEFAULT 'file' CHECK (kind IN ('image', 'file')),
    size         bigint NOT NULL DEFAULT 0,        -- bytes of the stored original
    sha256       text NOT NULL DEFAULT '',         -- hex, of the stored original
    width        integer,
    height       integer,
    thumb_type   text,                             -- an image's thumbnail: its MIME type
    thumb_size   bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- The per-session quota sums a session's uploads of the last day; cleanup finds them by session.
CREATE INDEX idx_chat_attachments_session ON chat_attachments (session_id, created_at);
CREATE INDEX idx_chat_attachments_message ON chat_attachments (message_id)
    WHERE message_id IS NOT NULL;
-- Uploads that never finished (a chatd killed mid-upload) are swept by age.
CREATE INDEX idx_chat_attachments_uploading ON chat_attachments (created_at)
    WHERE state = 'uploading';

CREATE TABLE chat_attachment_chunks (
    attachment_id  text NOT NULL REFERENCES chat_attachments (id) ON DELETE CASCADE,
    variant        text NOT NULL CHECK (variant IN ('original', 'thumb', 'upload')),
    n              integer NOT NULL,               -- bytes n * chunk_bytes .. (n + 1) * chunk_bytes
    data           bytea NOT NULL,
    PRIMARY KEY (attachment_id, variant, n)
);
-- Photos, PDFs and archives-in-disguise are already compressed: PostgreSQL's TOAST compression
-- would spend CPU on every chunk for nothing. EXTERNAL: out of line, uncompressed.
ALTER TABLE chat_attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE chat_messages ADD COLUMN attachments jsonb;

CREATE TABLE chat_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
