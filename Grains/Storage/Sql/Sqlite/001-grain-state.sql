-- Grain state for the Orleans ADO.NET storage provider on SQLite.
-- Applied at every start: every statement is idempotent.

CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  TEXT NOT NULL PRIMARY KEY,
    QueryText TEXT NOT NULL
);

-- One row per grain state. The full grain key is the primary key, so the provider's hash
-- parameters are not needed for lookups. A string-keyed grain has N0 = N1 = 0 and its key in
-- GrainIdExtension; a missing extension is stored as ''.
CREATE TABLE IF NOT EXISTS GrainState
(
    ServiceId        TEXT    NOT NULL,
    GrainType        TEXT    NOT NULL,
    GrainIdN0        INTEGER NOT NULL,
    GrainIdN1        INTEGER NOT NULL,
    GrainIdExtension TEXT    NOT NULL,
    Payload          BLOB    NULL,
    Version          INTEGER NOT NULL,
    ModifiedOn       TEXT    NOT NULL,
    PRIMARY KEY (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension)
) WITHOUT ROWID;

-- Read: zero or one row of (PayloadBinary, Version).
INSERT OR REPLACE INTO OrleansQuery (QueryKey, QueryText) VALUES ('ReadFromStorageKey', '
SELECT Payload AS PayloadBinary, Version
FROM GrainState
WHERE ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '''');');

-- Writes, clears and deletes commit without waiting for the disk (synchronous = NORMAL, set on the
-- connection that runs them): the silo acknowledges them only after it has flushed the log itself,
-- once for every commit made meanwhile. The silo's own write queue runs the same statements, several
-- writes per transaction (Grains/Storage/SqliteBatchWriteGrainStorage.cs); the texts below remain the
-- provider's contract for these rows and versions, which the queue keeps.

-- Write: a first write (no version) inserts version 1 unless a row exists; later writes update
-- only the version they read. Exactly one row with the new version means success; no row is a
-- version conflict.
INSERT OR REPLACE INTO OrleansQuery (QueryKey, QueryText) VALUES ('WriteToStorageKey', '
PRAGMA synchronous = NORMAL;
INSERT INTO GrainState (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension, Payload, Version, ModifiedOn)
SELECT @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, COALESCE(@GrainIdExtensionString, ''''), @PayloadBinary, 1,
       strftime(''%Y-%m-%dT%H:%M:%fZ'', ''now'')
WHERE @GrainStateVersion IS NULL
ON CONFLICT DO NOTHING
RETURNING Version AS NewGrainStateVersion;
UPDATE GrainState
SET Payload = @PayloadBinary, Version = Version + 1, ModifiedOn = strftime(''%Y-%m-%dT%H:%M:%fZ'', ''now'')
WHERE @GrainStateVersion IS NOT NULL AND Version = @GrainStateVersion
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '''')
RETURNING Version AS NewGrainStateVersion;');

-- Clear: keeps the row without a payload and moves its version on.
INSERT OR REPLACE INTO OrleansQuery (QueryKey, QueryText) VALUES ('ClearStorageKey', '
PRAGMA synchronous = NORMAL;
UPDATE GrainState
SET Payload = NULL, Version = Version + 1, ModifiedOn = strftime(''%Y-%m-%dT%H:%M:%fZ'', ''now'')
WHERE Version = @GrainStateVersion
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '''')
RETURNING Version;');

-- Delete (DeleteStateOnClear): removes the row; answers a value other than the version it was given.
INSERT OR REPLACE INTO OrleansQuery (QueryKey, QueryText) VALUES ('DeleteStorageKey', '
PRAGMA synchronous = NORMAL;
DELETE FROM GrainState
WHERE Version = @GrainStateVersion
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '''')
RETURNING Version + 1;');
