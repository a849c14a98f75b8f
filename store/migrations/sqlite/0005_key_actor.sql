-- Countersign store, SQLite schema version 5: an agent key may be bound to
-- an actor (`countersign keys create --role agent --actor NAME`). The runs
-- such a key proposes are the actor's, whatever the request says. NULL for
-- unbound keys and every key created before.
ALTER TABLE api_keys ADD COLUMN actor TEXT;
