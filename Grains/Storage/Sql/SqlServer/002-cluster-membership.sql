-- Cluster membership for Orleans ADO.NET clustering on SQL Server: silos write it, silos and
-- frontend clients read the gateway list from it.
-- Silos apply it at every start; by hand: sqlcmd -b -S <server> -d <database> -i 002-cluster-membership.sql
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

-- One row per cluster (DeploymentId = Orleans' ClusterId). Version is the membership table's
-- version: every change to a member's status or to the member set moves it on by one, and a
-- change is made only by the writer that read the current version.
IF OBJECT_ID(N'ClusterVersion', N'U') IS NULL
    CREATE TABLE ClusterVersion
    (
        DeploymentId nvarchar(150) COLLATE Latin1_General_BIN2 NOT NULL CONSTRAINT PK_ClusterVersion PRIMARY KEY,
        Version      int           NOT NULL,
        ModifiedOn   datetime2(3)  NOT NULL
    );

-- One row per silo incarnation (address, port, generation).
IF OBJECT_ID(N'ClusterMember', N'U') IS NULL
    CREATE TABLE ClusterMember
    (
        DeploymentId nvarchar(150) COLLATE Latin1_General_BIN2 NOT NULL,
        Address      varchar(45)   NOT NULL,
        Port         int           NOT NULL,
        Generation   int           NOT NULL,
        SiloName     nvarchar(150) NOT NULL,
        HostName     nvarchar(150) NOT NULL,
        Status       int           NOT NULL,
        ProxyPort    int           NOT NULL,
        SuspectTimes nvarchar(max) NULL,
        StartTime    datetime2(3)  NOT NULL,
        IAmAliveTime datetime2(3)  NOT NULL,
        CONSTRAINT PK_ClusterMember PRIMARY KEY (DeploymentId, Address, Port, Generation),
        CONSTRAINT FK_ClusterMember_ClusterVersion FOREIGN KEY (DeploymentId)
            REFERENCES ClusterVersion (DeploymentId) ON DELETE CASCADE
    );

MERGE INTO OrleansQuery AS target
USING (VALUES

-- A silo's first step: the cluster's version row, created at version 0 when missing.
-- One row, one boolean column: whether this call created it.
('InsertMembershipVersionKey', N'
INSERT INTO ClusterVersion (DeploymentId, Version, ModifiedOn)
SELECT @DeploymentId, 0, SYSUTCDATETIME()
WHERE NOT EXISTS (SELECT 1 FROM ClusterVersion WITH (UPDLOCK, HOLDLOCK) WHERE DeploymentId = @DeploymentId);
SELECT CAST(@@ROWCOUNT AS bit) AS Created;
'),

-- Reads: the version row, with every member (or the one asked for) joined on. A cluster
-- without members still gives one row, with its version and no StartTime.
('MembershipReadAllKey', N'
SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status,
       m.ProxyPort, m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
FROM ClusterVersion v
LEFT JOIN ClusterMember m ON m.DeploymentId = v.DeploymentId
WHERE v.DeploymentId = @DeploymentId;
'),

('MembershipReadRowKey', N'
SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status,
       m.ProxyPort, m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
FROM ClusterVersion v
LEFT JOIN ClusterMember m ON m.DeploymentId = v.DeploymentId
    AND m.Address = @Address AND m.Port = @Port AND m.Generation = @Generation
WHERE v.DeploymentId = @DeploymentId;
'),

-- A new member, only if it is not there yet and the version is the one the silo read; the
-- version moves on in the same transaction. One boolean: whether both happened.
('InsertMembershipKey', N'
SET XACT_ABORT ON;
DECLARE @done bit = 0;
BEGIN TRANSACTION;
UPDATE ClusterVersion
SET Version = Version + 1, ModifiedOn = SYSUTCDATETIME()
WHERE DeploymentId = @DeploymentId AND Version = @Version
  AND NOT EXISTS (SELECT 1 FROM ClusterMember WITH (UPDLOCK, HOLDLOCK)
                  WHERE DeploymentId = @DeploymentId AND Address = @Address
                    AND Port = @Port AND Generation = @Generation);
IF @@ROWCOUNT = 1
BEGIN
    INSERT INTO ClusterMember (DeploymentId, Address, Port, Generation, SiloName, HostName, Status,
                               ProxyPort, SuspectTimes, StartTime, IAmAliveTime)
    VALUES (@DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status,
            @ProxyPort, NULL, @StartTime, @IAmAliveTime);
    SET @done = 1;
END;
COMMIT TRANSACTION;
SELECT @done AS Inserted;
'),

-- A member's new status and suspicions, only at the version the silo read; the version moves
-- on in the same transaction. One boolean: whether both happened.
('UpdateMembershipKey', N'
SET XACT_ABORT ON;
DECLARE @done bit = 0;
BEGIN TRANSACTION;
UPDATE ClusterVersion
SET Version = Version + 1, ModifiedOn = SYSUTCDATETIME()
WHERE DeploymentId = @DeploymentId AND Version = @Version
  AND EXISTS (SELECT 1 FROM ClusterMember WITH (UPDLOCK, HOLDLOCK)
              WHERE DeploymentId = @DeploymentId AND Address = @Address
                AND Port = @Port AND Generation = @Generation);
IF @@ROWCOUNT = 1
BEGIN
    UPDATE ClusterMember
    SET Status = @Status, SuspectTimes = @SuspectTimes, IAmAliveTime = @IAmAliveTime
    WHERE DeploymentId = @DeploymentId AND Address = @Address
      AND Port = @Port AND Generation = @Generation;
    IF @@ROWCOUNT = 1 SET @done = 1;
END;
IF @done = 1 COMMIT TRANSACTION; ELSE ROLLBACK TRANSACTION;
SELECT @done AS Updated;
'),

-- The heartbeat: no version change, so it never conflicts with membership changes.
('UpdateIAmAlivetimeKey', N'
UPDATE ClusterMember
SET IAmAliveTime = @IAmAliveTime
WHERE DeploymentId = @DeploymentId AND Address = @Address
  AND Port = @Port AND Generation = @Generation;
'),

-- The whole cluster's rows (members go with their version row).
('DeleteMembershipTableEntriesKey', N'
DELETE FROM ClusterVersion
WHERE DeploymentId = @DeploymentId;
'),

-- Members that are not active and have not said they are alive since the cut-off.
('CleanupDefunctSiloEntriesKey', N'
DELETE FROM ClusterMember
WHERE DeploymentId = @DeploymentId AND IAmAliveTime < @IAmAliveTime AND Status <> 3;
'),

-- Active silos that accept clients.
('GatewaysQueryKey', N'
SELECT Address, ProxyPort, Generation
FROM ClusterMember
WHERE DeploymentId = @DeploymentId AND Status = @Status AND ProxyPort > 0;
')

) AS source (QueryKey, QueryText)
ON target.QueryKey = source.QueryKey
WHEN MATCHED THEN UPDATE SET QueryText = source.QueryText
WHEN NOT MATCHED THEN INSERT (QueryKey, QueryText) VALUES (source.QueryKey, source.QueryText);

COMMIT TRANSACTION;
