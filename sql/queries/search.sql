-- Full-text search over messages (chatd/db/search.py). The language is [search] language, a
-- PostgreSQL text search configuration; messages are indexed with theirs (search_config).
-- Run without server-side preparation (prepare=False): each search is planned with its own
-- values, so a filter left out (NULL) folds away and the planner sees the real ones.

-- name: search_config_exists
SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = %(config)s) AS present,
       ARRAY(SELECT cfgname::text FROM pg_ts_config ORDER BY cfgname) AS available

-- name: search_set_config
-- The configuration new messages are indexed with (chat_messages.search_config's default);
-- the previous one, when this changed it.
WITH old AS (SELECT config FROM chat_search_settings)
UPDATE chat_search_settings s SET config = %(config)s, updated_at = now()
  FROM old
 WHERE s.config IS DISTINCT FROM %(config)s
RETURNING old.config AS previous

-- name: search_parse
-- The query as PostgreSQL reads it (websearch syntax: "quoted phrases", or, -not); no lexemes
-- left (only stop words or punctuation) matches nothing.
SELECT numnode(websearch_to_tsquery(%(config)s::regconfig, %(q)s)) AS nodes,
       websearch_to_tsquery(%(config)s::regconfig, %(q)s)::text AS parsed

-- name: search_matches_upto
-- How many messages match, filters included, counted up to `cap` (the search index gives them):
-- this chooses search_page's plan for newest first ('newest' or 'few'). The planner's estimate
-- cannot: a word rarer than those its statistics keep is guessed at hundreds of rows whatever
-- its real count, and walking the time index for a word in 20 messages reads the whole table.
-- The WHERE clause is search_page's: change them together.
SELECT count(*) AS n
  FROM (SELECT 1 FROM chat_messages m
        WHERE m.search @@ websearch_to_tsquery(%(config)s::regconfig, %(q)s)
       AND (%(since)s::timestamptz IS NULL OR m.created_at >= %(since)s::timestamptz)
       AND (%(until)s::timestamptz IS NULL OR m.created_at < %(until)s::timestamptz)
       AND (%(sender)s::text IS NULL OR m.sender_type = %(sender)s::text)
       AND (%(session_ids)s::text[] IS NULL OR m.session_id = ANY(%(session_ids)s::text[]))
       AND (%(tag)s::text IS NULL
            OR EXISTS (SELECT 1 FROM chat_tags t
                        WHERE t.session_id = m.session_id AND t.tag = %(tag)s::text))
       AND (NOT %(failed)s::boolean
            OR EXISTS (SELECT 1 FROM chat_messages f
                        WHERE f.session_id = m.session_id AND f.status = 'failed'))
       AND (%(rated)s::boolean IS NULL
            OR EXISTS (SELECT 1 FROM chat_ratings r
                        WHERE r.session_id = m.session_id
                          AND (%(rating)s::smallint IS NULL OR r.rating = %(rating)s::smallint))
               = %(rated)s::boolean)
       AND (%(handed_off)s::boolean IS NULL
            OR EXISTS (SELECT 1 FROM chat_audit a
                        WHERE a.session_id = m.session_id
                          AND a.action IN ('handoff_requested', 'taken'))
               = %(handed_off)s::boolean)
       AND (%(state)s::text IS NULL
            OR EXISTS (SELECT 1 FROM chat_sessions s
                        WHERE s.id = m.session_id AND s.conversation_state = %(state)s::text))
       AND (%(agent_id)s::text IS NULL
            OR EXISTS (SELECT 1 FROM chat_audit a
                        WHERE a.session_id = m.session_id
                          AND (a.agent_id = %(agent_id)s::text
                               OR a.detail ->> 'to' = %(agent_id)s::text)))
         LIMIT %(cap)s) AS found

-- name: search_page
-- One page of matches, by one of three plans (`plan`; the other two branches are constant
-- false, planned away, since the query runs unprepared):
-- - newest: newest first, for a word with many matches (search_matches_upto): the planner
--   walks the created_at index backwards and stops after the page (the match is checked on
--   each row it passes);
-- - few: newest first, for a word with few matches: they come from the search index
--   (materialised, so the planner cannot trade it for the walk), then are sorted;
-- - relevance: most relevant first (ts_rank_cd: how often and how close together the words
--   occur), then newest. Every match is ranked: the GIN index finds them, each is read once.
-- Filters on the conversation are probes of small indexes (tags, failed messages, the audit by
-- session; the session by its key); a shopper's sessions come as ids (shopper_sessions), so the
-- planner may start from them. Handed off: the audit has a request for a person, or an agent's
-- taking it. An agent's: the audit names it (took, replied, transferred, handed back, closed,
-- or was passed the conversation; whoever holds it now took it or was passed it).
WITH matches AS NOT MATERIALIZED (
SELECT m.id, m.session_id, m.seq, m.sender_type, m.created_at,
       ts_rank_cd(m.search, websearch_to_tsquery(%(config)s::regconfig, %(q)s)) AS rank
  FROM chat_messages m
 WHERE m.search @@ websearch_to_tsquery(%(config)s::regconfig, %(q)s)
   AND (%(since)s::timestamptz IS NULL OR m.created_at >= %(since)s::timestamptz)
   AND (%(until)s::timestamptz IS NULL OR m.created_at < %(until)s::timestamptz)
   AND (%(sender)s::text IS NULL OR m.sender_type = %(sender)s::text)
   AND (%(session_ids)s::text[] IS NULL OR m.session_id = ANY(%(session_ids)s::text[]))
   AND (%(tag)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_tags t
                    WHERE t.session_id = m.session_id AND t.tag = %(tag)s::text))
   AND (NOT %(failed)s::boolean
        OR EXISTS (SELECT 1 FROM chat_messages f
                    WHERE f.session_id = m.session_id AND f.status = 'failed'))
   AND (%(rated)s::boolean IS NULL
        OR EXISTS (SELECT 1 FROM chat_ratings r
                    WHERE r.session_id = m.session_id
                      AND (%(rating)s::smallint IS NULL OR r.rating = %(rating)s::smallint))
           = %(rated)s::boolean)
   AND (%(handed_off)s::boolean IS NULL
        OR EXISTS (SELECT 1 FROM chat_audit a
                    WHERE a.session_id = m.session_id
                      AND a.action IN ('handoff_requested', 'taken'))
           = %(handed_off)s::boolean)
   AND (%(state)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_sessions s
                    WHERE s.id = m.session_id AND s.conversation_state = %(state)s::text))
   AND (%(agent_id)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_audit a
                    WHERE a.session_id = m.session_id
                      AND (a.agent_id = %(agent_id)s::text
                           OR a.detail ->> 'to' = %(agent_id)s::text)))
), few AS MATERIALIZED (
SELECT * FROM matches WHERE %(plan)s::text = 'few'
)
(SELECT * FROM matches WHERE %(plan)s::text = 'newest'
  ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s)
UNION ALL
(SELECT * FROM few
  ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s)
UNION ALL
(SELECT * FROM matches WHERE %(plan)s::text = 'relevance'
  ORDER BY rank DESC, created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s)

-- name: search_details
-- What a page shows of each match: the whole message with its matches marked (ts_headline is
-- costly: only for the page's rows), and who the conversation is with. The delimiters are two
-- private-use characters, removed from the content first (chatd/core/search.py).
SELECT m.id,
       ts_headline(%(config)s::regconfig, translate(m.content, %(marks)s, ''),
                   websearch_to_tsquery(%(config)s::regconfig, %(q)s),
                   %(options)s) AS headline,
       s.user_id, s.guest_email,
       ARRAY(SELECT t.tag FROM chat_tags t WHERE t.session_id = s.id ORDER BY t.tag) AS tags
  FROM chat_messages m
  JOIN chat_sessions s ON s.id = m.session_id
 WHERE m.id = ANY(%(ids)s)

-- name: shopper_sessions
-- A shopper's sessions: by user id, or by guest email ignoring case (each on its index).
SELECT id FROM chat_sessions
 WHERE (%(user_id)s::text IS NOT NULL AND user_id = %(user_id)s::text)
    OR (%(email)s::text IS NOT NULL AND lower(guest_email) = lower(%(email)s::text))
 ORDER BY created_at, id

-- name: search_reindex_batch
-- The next `limit` messages by id after `after`; those indexed with another configuration (or
-- all, with `all`) are moved to `config`, which regenerates their tsvector. One short
-- transaction per batch, walking the primary key: each batch costs the same however far along.
WITH batch AS (
    SELECT id FROM chat_messages WHERE id > %(after)s ORDER BY id LIMIT %(limit)s
), moved AS (
    UPDATE chat_messages m SET search_config = %(config)s
      FROM batch
     WHERE m.id = batch.id AND (%(all)s OR m.search_config <> %(config)s)
    RETURNING m.id
)
SELECT (SELECT max(id) FROM batch) AS last_id, (SELECT count(*) FROM batch) AS seen,
       (SELECT count(*) FROM moved) AS moved

-- name: search_reindex_todo
-- Messages not yet indexed with `config` (a scan of the table: for the command's first line).
SELECT count(*) AS todo, (SELECT count(*) FROM chat_messages) AS total
  FROM chat_messages WHERE search_config <> %(config)s
