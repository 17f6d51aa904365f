-- Grain state for the Orleans ADO.NET storage provider on SQL Server.
-- Silos apply it at every start; by hand: sqlcmd -b -S <server> -d <database> -i 001-grain-state.sql
-- One batch (no GO), idempotent, and one transaction under an application lock, so processes that
-- start at once take turns.

SET XACT_ABORT ON;
BEGIN TRANSACTION;

DECLARE @lock int;
EXEC @lock = sp_getapplock @Resource = N'client-management schema', @LockMode = N'Exclusive',
    @LockOwner = N'Transaction', @LockTimeout = 60000;
IF @lock < 0
    THROW 50000, N'Timed out waiting for another process to finish applying the schema.', 1;

IF OBJECT_ID(N'OrleansQuery', N'U') IS NULL
    CREATE TABLE OrleansQuery
    (
        QueryKey  varchar(64)   NOT NULL CONSTRAINT PK_OrleansQuery PRIMARY KEY,
        QueryText nvarchar(max) NOT NULL
    );

-- One row per grain state, matched on the full grain key. The key columns compare in a binary
-- collation (grain keys such as token digests are case-sensitive). The clustered index is on the
-- provider's hashes, which keeps it narrow whatever the key lengths; uniqueness of the full key
-- comes from the write query, which checks and inserts under a range lock.
IF OBJECT_ID(N'GrainState', N'U') IS NULL
BEGIN
    CREATE TABLE GrainState
    (
        GrainIdHash      int            NOT NULL,
        GrainTypeHash    int            NOT NULL,
        ServiceId        nvarchar(150)  COLLATE Latin1_General_BIN2 NOT NULL,
        GrainType        nvarchar(512)  COLLATE Latin1_General_BIN2 NOT NULL,
        GrainIdN0        bigint         NOT NULL,
        GrainIdN1        bigint         NOT NULL,
        GrainIdExtension nvarchar(512)  COLLATE Latin1_General_BIN2 NOT NULL,
        Payload          varbinary(max) NULL,
        Version          int            NOT NULL,
        ModifiedOn       datetime2(3)   NOT NULL
    );
    CREATE CLUSTERED INDEX IX_GrainState_Hashes ON GrainState (GrainIdHash, GrainTypeHash);
END;

MERGE INTO OrleansQuery AS target
USING (VALUES

-- Read: zero or one row of (PayloadBinary, Version).
('ReadFromStorageKey', N'
SELECT Payload AS PayloadBinary, Version
FROM GrainState
WHERE GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = ISNULL(@GrainIdExtensionString, N'''');
'),

-- Write: a first write (no version) inserts version 1 unless a row exists; later writes update
-- only the version they read. Exactly one row with the new version means success; no row is a
-- version conflict.
('WriteToStorageKey', N'
IF @GrainStateVersion IS NULL
    INSERT INTO GrainState (GrainIdHash, GrainTypeHash, ServiceId, GrainType, GrainIdN0, GrainIdN1,
                            GrainIdExtension, Payload, Version, ModifiedOn)
    OUTPUT inserted.Version AS NewGrainStateVersion
    SELECT @GrainIdHash, @GrainTypeHash, @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1,
           ISNULL(@GrainIdExtensionString, N''''), @PayloadBinary, 1, SYSUTCDATETIME()
    WHERE NOT EXISTS (
        SELECT 1 FROM GrainState WITH (UPDLOCK, HOLDLOCK)
        WHERE GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
          AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
          AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
          AND GrainIdExtension = ISNULL(@GrainIdExtensionString, N''''));
ELSE
    UPDATE GrainState
    SET Payload = @PayloadBinary, Version = Version + 1, ModifiedOn = SYSUTCDATETIME()
    OUTPUT inserted.Version AS NewGrainStateVersion
    WHERE Version = @GrainStateVersion
      AND GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
      AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
      AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
      AND GrainIdExtension = ISNULL(@GrainIdExtensionString, N'''');
'),

-- Clear: keeps the row without a payload and moves its version on.
('ClearStorageKey', N'
UPDATE GrainState
SET Payload = NULL, Version = Version + 1, ModifiedOn = SYSUTCDATETIME()
OUTPUT inserted.Version
WHERE Version = @GrainStateVersion
  AND GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = ISNULL(@GrainIdExtensionString, N'''');
'),

-- Delete (DeleteStateOnClear): removes the row; answers a value other than the version it was given.
('DeleteStorageKey', N'
DELETE FROM GrainState
OUTPUT deleted.Version + 1
WHERE Version = @GrainStateVersion
  AND GrainIdHash = @GrainIdHash AND GrainTypeHash = @GrainTypeHash
  AND ServiceId = @ServiceId AND GrainType = @GrainTypeString
  AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1
  AND GrainIdExtension = ISNULL(@GrainIdExtensionString, N'''');
')

) AS source (QueryKey, QueryText)
ON target.QueryKey = source.QueryKey
WHEN MATCHED THEN UPDATE SET QueryText = source.QueryText
WHEN NOT MATCHED THEN INSERT (QueryKey, QueryText) VALUES (source.QueryKey, source.QueryText);

COMMIT TRANSACTION;
