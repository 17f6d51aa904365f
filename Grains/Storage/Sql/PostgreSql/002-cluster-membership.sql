-- Cluster membership for Orleans ADO.NET clustering on PostgreSQL: silos write it, silos and
-- frontend clients read the gateway list from it.
-- Silos apply it at every start; by hand: psql -v ON_ERROR_STOP=1 -d <database> -f 002-cluster-membership.sql
-- Idempotent, and one transaction under an advisory lock, so processes that start at once take turns.

BEGIN;

SELECT pg_advisory_xact_lock(hashtext('client-management schema'));

CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  varchar(64) NOT NULL PRIMARY KEY,
    QueryText text        NOT NULL
);

-- One row per cluster (DeploymentId = Orleans' ClusterId). Version is the membership table's
-- version: every change to a member's status or to the member set moves it on by one, and a
-- change is made only by the writer that read the current version.
CREATE TABLE IF NOT EXISTS ClusterVersion
(
    DeploymentId text        NOT NULL PRIMARY KEY,
    Version      integer     NOT NULL,
    ModifiedOn   timestamptz NOT NULL
);

-- One row per silo incarnation (address, port, generation). Address is text, not inet: the
-- provider reads it as a string.
CREATE TABLE IF NOT EXISTS ClusterMember
(
    DeploymentId text        NOT NULL REFERENCES ClusterVersion (DeploymentId) ON DELETE CASCADE,
    Address      text        NOT NULL,
    Port         integer     NOT NULL,
    Generation   integer     NOT NULL,
    SiloName     text        NOT NULL,
    HostName     text        NOT NULL,
    Status       integer     NOT NULL,
    ProxyPort    integer     NOT NULL,
    SuspectTimes text        NULL,
    StartTime    timestamptz NOT NULL,
    IAmAliveTime timestamptz NOT NULL,
    PRIMARY KEY (DeploymentId, Address, Port, Generation)
);

INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES

-- A silo's first step: the cluster's version row, created at version 0 when missing.
-- One row, one boolean column: whether this call created it.
('InsertMembershipVersionKey', $query$
WITH created AS (
    INSERT INTO ClusterVersion (DeploymentId, Version, ModifiedOn)
    VALUES (@DeploymentId, 0, now())
    ON CONFLICT (DeploymentId) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM created) AS Created;
$query$),

-- Reads: the version row, with every member (or the one asked for) joined on. A cluster
-- without members still gives one row, with its version and no StartTime.
('MembershipReadAllKey', $query$
SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status,
       m.ProxyPort, m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
FROM ClusterVersion v
LEFT JOIN ClusterMember m ON m.DeploymentId = v.DeploymentId
WHERE v.DeploymentId = @DeploymentId;
$query$),

('MembershipReadRowKey', $query$
SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status,
       m.ProxyPort, m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
FROM ClusterVersion v
LEFT JOIN ClusterMember m ON m.DeploymentId = v.DeploymentId
    AND m.Address = @Address AND m.Port = @Port AND m.Generation = @Generation
WHERE v.DeploymentId = @DeploymentId;
$query$),

-- A new member, only if it is not there yet and the version is the one the silo read; the
-- version moves on in the same statement. One boolean: whether both happened.
('InsertMembershipKey', $query$
WITH bumped AS (
    UPDATE ClusterVersion
    SET Version = Version + 1, ModifiedOn = now()
    WHERE DeploymentId = @DeploymentId AND Version = @Version
      AND NOT EXISTS (SELECT 1 FROM ClusterMember
                      WHERE DeploymentId = @DeploymentId AND Address = @Address
                        AND Port = @Port AND Generation = @Generation)
    RETURNING DeploymentId
), inserted AS (
    INSERT INTO ClusterMember (DeploymentId, Address, Port, Generation, SiloName, HostName, Status,
                               ProxyPort, SuspectTimes, StartTime, IAmAliveTime)
    SELECT DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status,
           @ProxyPort, NULL, @StartTime, @IAmAliveTime
    FROM bumped
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM inserted) AS Inserted;
$query$),

-- A member's new status and suspicions, only at the version the silo read; the version moves on
-- in the same statement. One boolean: whether both happened.
('UpdateMembershipKey', $query$
WITH bumped AS (
    UPDATE ClusterVersion
    SET Version = Version + 1, ModifiedOn = now()
    WHERE DeploymentId = @DeploymentId AND Version = @Version
      AND EXISTS (SELECT 1 FROM ClusterMember
                  WHERE DeploymentId = @DeploymentId AND Address = @Address
                    AND Port = @Port AND Generation = @Generation)
    RETURNING DeploymentId
), updated AS (
    UPDATE ClusterMember
    SET Status = @Status, SuspectTimes = @SuspectTimes, IAmAliveTime = @IAmAliveTime
    WHERE DeploymentId = @DeploymentId AND Address = @Address
      AND Port = @Port AND Generation = @Generation
      AND EXISTS (SELECT 1 FROM bumped)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM updated) AS Updated;
$query$),

-- The heartbeat: no version change, so it never conflicts with membership changes.
('UpdateIAmAlivetimeKey', $query$
UPDATE ClusterMember
SET IAmAliveTime = @IAmAliveTime
WHERE DeploymentId = @DeploymentId AND Address = @Address
  AND Port = @Port AND Generation = @Generation;
$query$),

-- The whole cluster's rows (members go with their version row).
('DeleteMembershipTableEntriesKey', $query$
DELETE FROM ClusterVersion
WHERE DeploymentId = @DeploymentId;
$query$),

-- Members that are not active and have not said they are alive since the cut-off.
('CleanupDefunctSiloEntriesKey', $query$
DELETE FROM ClusterMember
WHERE DeploymentId = @DeploymentId AND IAmAliveTime < @IAmAliveTime AND Status <> 3;
$query$),

-- Active silos that accept clients.
('GatewaysQueryKey', $query$
SELECT Address, ProxyPort, Generation
FROM ClusterMember
WHERE DeploymentId = @DeploymentId AND Status = @Status AND ProxyPort > 0;
$query$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;

COMMIT;
