-- Grain state for the Orleans ADO.NET storage provider on PostgreSQL.
-- Silos apply it at every start; by hand: psql -v ON_ERROR_STOP=1 -d <database> -f 001-grain-state.sql
-- Idempotent, and one transaction under an advisory lock, so processes that start at once take turns.
-- Identifiers are unquoted (folded to lower case), as the provider's own start-up query is.

BEGIN;

SELECT pg_advisory_xact_lock(hashtext('client-management schema'));

CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  varchar(64) NOT NULL PRIMARY KEY,
    QueryText text        NOT NULL
);

-- One row per grain state. The full grain key is the primary key, so the provider's hash
-- parameters are not needed for lookups. A string-keyed grain has N0 = N1 = 0 and its key in
-- GrainIdExtension; a missing extension is stored as ''.
CREATE TABLE IF NOT EXISTS GrainState
(
    ServiceId        text        NOT NULL,
    GrainType        text        NOT NULL,
    GrainIdN0        bigint      NOT NULL,
    GrainIdN1        bigint      NOT NULL,
    GrainIdExtension text        NOT NULL,
    Payload          bytea       NULL,
    Version          integer     NOT NULL,
    ModifiedOn       timestamptz NOT NULL,
    PRIMARY KEY (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension)
);

INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES

-- Read: zero or one row of (PayloadBinary, Version).
('ReadFromStorageKey', $query$
SELECT Payload AS PayloadBinary, Version
FROM GrainState
WHERE ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '');
$query$),

-- Write: a first write (no version) inserts version 1 unless a row exists; later writes update
-- only the version they read. Exactly one row with the new version means success; no row is a
-- version conflict.
('WriteToStorageKey', $query$
WITH inserted AS (
    INSERT INTO GrainState (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension, Payload, Version, ModifiedOn)
    SELECT @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, COALESCE(@GrainIdExtensionString, ''), @PayloadBinary, 1, now()
    WHERE @GrainStateVersion IS NULL
    ON CONFLICT DO NOTHING
    RETURNING Version
), updated AS (
    UPDATE GrainState
    SET Payload = @PayloadBinary, Version = Version + 1, ModifiedOn = now()
    WHERE @GrainStateVersion IS NOT NULL AND Version = @GrainStateVersion
      AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
      AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
      AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '')
    RETURNING Version
)
SELECT Version AS NewGrainStateVersion FROM inserted
UNION ALL
SELECT Version FROM updated;
$query$),

-- Clear: keeps the row without a payload and moves its version on.
('ClearStorageKey', $query$
UPDATE GrainState
SET Payload = NULL, Version = Version + 1, ModifiedOn = now()
WHERE Version = @GrainStateVersion
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '')
RETURNING Version;
$query$),

-- Delete (DeleteStateOnClear): removes the row; answers a value other than the version it was given.
('DeleteStorageKey', $query$
DELETE FROM GrainState
WHERE Version = @GrainStateVersion
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = COALESCE(@GrainIdExtensionString, '')
RETURNING Version + 1;
$query$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;

COMMIT;
