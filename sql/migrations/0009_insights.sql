-- Conversation insights, part one: full-text search over messages, tags on conversations, and an
-- audit of shoppers' data deleted on request (chatd/db/search.py, tags.py, shoppers.py).
--
-- Adding the search column rewrites chat_messages (a few seconds per million messages): no
-- statement timeout for this file.
SET LOCAL statement_timeout = 0;

-- * Search. Each message keeps the text search configuration (language) it was indexed with,
--   and a stored tsvector made with it, under a GIN index. A stored generated column cannot read
--   a setting, so the configuration is a column; its default is the one-row
--   chat_search_settings, which chatd sets from [search] language at start. Inserts name
--   neither column. Changing the language later: new messages get the new one at once, and
--   `chatd search reindex` moves the old ones over in batches (each UPDATE regenerates the
--   tsvector). Configurations are stored by name (text), not as regconfig: pg_upgrade refuses
--   tables with regconfig columns.
CREATE TABLE chat_search_settings (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    config      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO chat_search_settings (config) VALUES ('simple');

CREATE FUNCTION chatd_search_config() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT config FROM chat_search_settings), 'simple')
$$;

-- IMMUTABLE although the name is looked up in pg_ts_config, as a generated column needs: a
-- configuration does not change under its name (ALTER TEXT SEARCH CONFIGURATION would need a
-- `chatd search reindex --all`).
CREATE FUNCTION chatd_tsvector(config text, content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector(config::regconfig, content)
$$;

ALTER TABLE chat_messages
    ADD COLUMN search_config text NOT NULL DEFAULT 'simple',
    ADD COLUMN search tsvector GENERATED ALWAYS AS (chatd_tsvector(search_config, content)) STORED;
ALTER TABLE chat_messages ALTER COLUMN search_config SET DEFAULT chatd_search_config();
CREATE INDEX idx_chat_messages_search ON chat_messages USING gin (search);

-- Search filters: a shopper's sessions by guest email (ignoring case), and conversations with a
-- failed delivery (a handful of rows: the partial index stays tiny).
CREATE INDEX idx_chat_sessions_guest_email ON chat_sessions (lower(guest_email));
CREATE INDEX idx_chat_messages_failed ON chat_messages (session_id) WHERE status = 'failed';

-- * Tags. A conversation's labels, set by staff (admin API) or by n8n (a reply's metadata.tags or
--   a {"type": "tag", "payload": {"tags": [...]}} action, taken out of the reply by the trigger
--   below before it is stored, so shoppers never see them). chatd_tag() is the normal form:
--   trimmed, ASCII letters lowered, inner whitespace as "-", then 1-50 characters of a-z 0-9
--   _ . : - starting with a letter or digit; NULL when that fails. chatd/core/tags.py is the same
--   rule in Python (a test checks they agree).
CREATE FUNCTION chatd_tag(raw text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[a-z0-9][a-z0-9_.:-]{0,49}$' THEN t END
      FROM (SELECT regexp_replace(
                       translate(btrim(raw, E' \t\r\n'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                 'abcdefghijklmnopqrstuvwxyz'),
                       E'[ \t\r\n]+', '-', 'g') AS t) AS normal
$$;

CREATE TABLE chat_tags (
    session_id  text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    tag         text NOT NULL CHECK (chatd_tag(tag) = tag),
    source      text NOT NULL CHECK (source IN ('n8n', 'staff')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, tag)
);
CREATE INDEX idx_chat_tags_tag ON chat_tags (tag, session_id);

-- The tags a bot reply carries: metadata.n8n.tags (a list of strings, or one string) and the
-- payload.tags of its "tag" actions. The valid ones (at most 20 per reply, at most 50 per
-- conversation) are added with source 'n8n'; all of them leave the stored metadata. In the
-- reply's own transaction: a reply that is not stored (a duplicate, a late finisher) tags
-- nothing.
CREATE FUNCTION chatd_tags_from_reply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    given jsonb := NEW.metadata #> '{n8n,tags}';
    actions jsonb := CASE WHEN jsonb_typeof(NEW.metadata -> 'actions') = 'array'
                          THEN NEW.metadata -> 'actions' ELSE '[]' END;
    held integer;
BEGIN
    SELECT count(*) INTO held FROM chat_tags WHERE session_id = NEW.session_id;
    INSERT INTO chat_tags (session_id, tag, source)
    SELECT NEW.session_id, tag, 'n8n'
      FROM (SELECT DISTINCT chatd_tag(v #>> '{}') AS tag
              FROM (SELECT v FROM jsonb_array_elements(
                        CASE WHEN jsonb_typeof(given) = 'array' THEN given
                             ELSE jsonb_build_array(given) END) AS v
                    UNION ALL
                    SELECT v FROM jsonb_array_elements(actions) AS a,
                                  jsonb_array_elements(
                                      CASE WHEN jsonb_typeof(a #> '{payload,tags}') = 'array'
                                           THEN a #> '{payload,tags}'
                                           ELSE jsonb_build_array(a #> '{payload,tags}') END) AS v
                     WHERE a ->> 'type' = 'tag') AS raw
             WHERE jsonb_typeof(v) = 'string') AS normal
     WHERE tag IS NOT NULL
     ORDER BY tag
     LIMIT least(20, greatest(0, 50 - held))
    ON CONFLICT (session_id, tag) DO NOTHING;

    NEW.metadata := NEW.metadata #- '{n8n,tags}';
    IF NEW.metadata -> 'n8n' = '{}' THEN
        NEW.metadata := NEW.metadata - 'n8n';
    END IF;
    IF jsonb_typeof(NEW.metadata -> 'actions') = 'array' THEN
        actions := (SELECT coalesce(jsonb_agg(a), '[]')
                      FROM jsonb_array_elements(NEW.metadata -> 'actions') AS a
                     WHERE a ->> 'type' IS DISTINCT FROM 'tag');
        NEW.metadata := CASE WHEN actions = '[]' THEN NEW.metadata - 'actions'
                             ELSE jsonb_set(NEW.metadata, '{actions}', actions) END;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER chat_messages_tags BEFORE INSERT ON chat_messages
    FOR EACH ROW
    WHEN (NEW.sender_type = 'bot'
          AND (NEW.metadata #> '{n8n,tags}' IS NOT NULL
               OR NEW.metadata @> '{"actions": [{"type": "tag"}]}'))
    EXECUTE FUNCTION chatd_tags_from_reply();

-- * Deletion on request (`chatd shopper delete`, POST /api/admin/shoppers/delete). Every row of
--   the shopper's sessions goes in one transaction: the sessions, and by ON DELETE CASCADE their
--   messages, jobs, tags and whatever else hangs on a session. The audit keeps what was deleted
--   (rows per table), when, and on whose request, never the content. Nor the identifier in
--   clear: a salted SHA-256 of it, so "was X's data deleted?" can be answered by hashing X
--   again; the salt is this database's own (made here), so the hashes mean nothing elsewhere.
--   Whoever can read the salt can test guesses against a hash: it is pseudonymous, not anonymous.
CREATE TABLE chat_erasure_salt (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    salt  bytea NOT NULL
);
-- 244 random bits from two version-4 UUIDs (gen_random_uuid: the server's strong random source).
INSERT INTO chat_erasure_salt (salt)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

CREATE TABLE chat_erasures (
    id            text PRIMARY KEY,
    erased_at     timestamptz NOT NULL DEFAULT now(),
    requested_by  text NOT NULL,                   -- "cli", or "admin api from <address>"
    subject       text NOT NULL CHECK (subject IN ('user_id', 'email')),
    subject_hash  text NOT NULL,                   -- hex sha256(salt || subject || ':' || value)
    deleted       jsonb NOT NULL                   -- rows deleted, per table
);
CREATE INDEX idx_chat_erasures_erased_at ON chat_erasures (erased_at);
CREATE INDEX idx_chat_erasures_subject_hash ON chat_erasures (subject_hash);

CREATE FUNCTION chatd_subject_hash(subject text, value text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256((SELECT salt FROM chat_erasure_salt)
                         || convert_to(subject || ':' || value, 'UTF8')), 'hex')
$$;

-- Deletes the sessions `ids` and everything that hangs on them; returns the rows deleted per
-- table. Call it with the sessions locked (FOR UPDATE): the counts then match what goes.
-- Messages and their jobs are counted through indexes (jobs by message: the queue has no index
-- by session for finished jobs) and go by ON DELETE CASCADE. Every other table with a
-- session_id column (tags, and those later migrations add) is deleted from by name first and
-- counted as it goes, so a table added without ON DELETE CASCADE is not missed.
CREATE FUNCTION chatd_erase_sessions(ids text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    counts jsonb;
    other record;
    n bigint;
BEGIN
    counts := jsonb_build_object(
        'chat_sessions', (SELECT count(*) FROM chat_sessions WHERE id = ANY(ids)),
        'chat_messages', (SELECT count(*) FROM chat_messages WHERE session_id = ANY(ids)),
        'chat_webhook_queue', (SELECT count(*) FROM chat_webhook_queue j
                                 JOIN chat_messages m ON m.id = j.message_id
                                WHERE m.session_id = ANY(ids)));
    FOR other IN
        SELECT c.table_name::text AS name
          FROM information_schema.columns c
          JOIN information_schema.tables t
            ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND c.column_name = 'session_id'
           AND t.table_type = 'BASE TABLE'
           AND c.table_name NOT IN ('chat_sessions', 'chat_messages', 'chat_webhook_queue')
         ORDER BY 1
    LOOP
        EXECUTE format('DELETE FROM %I WHERE session_id = ANY($1)', other.name) USING ids;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(other.name, n);
    END LOOP;
    DELETE FROM chat_sessions WHERE id = ANY(ids);
    RETURN counts;
END $$;
