using System.ComponentModel.DataAnnotations;

namespace Grains.Hosting;

/// <summary>How the members of a cluster find each other.</summary>
public enum ClusteringMode
{
    /// <summary>Silos on one machine, found on loopback ports (the default): no database needed.</summary>
    Localhost,

    /// <summary>Orleans ADO.NET clustering: silos and frontends meet in a PostgreSQL or SQL Server membership table.</summary>
    AdoNet,
}

/// <summary>How this process joins the Orleans cluster, section <c>Cluster</c>.</summary>
public sealed class ClusterSettings
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Cluster";

    /// <summary>Names the stored data: processes that share a database and a service id share grain state.</summary>
    [Required]
    public string ServiceId { get; set; } = "client-management";

    /// <summary>Names the cluster whose members find each other.</summary>
    [Required]
    public string ClusterId { get; set; } = "default";

    /// <summary>How members find each other (default <see cref="ClusteringMode.Localhost"/>).</summary>
    public ClusteringMode Clustering { get; set; } = ClusteringMode.Localhost;

    /// <summary>
    /// With <see cref="ClusteringMode.AdoNet"/>: the membership database's engine, PostgreSql or
    /// SqlServer. Unset, the storage provider when that is a server.
    /// </summary>
    public StorageProvider? Provider { get; set; }

    /// <summary>
    /// With <see cref="ClusteringMode.AdoNet"/>: the membership database. Unset, the storage
    /// connection string when the storage provider is a server.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The IP address other members and clients use to reach this silo (default 127.0.0.1).</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>The silo's port for silo-to-silo traffic (default 11111).</summary>
    [Range(0, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>The silo's port for Orleans clients (default 30000).</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// With localhost clustering, the silo port of the cluster's first silo on this machine; unset,
    /// this silo is that first silo. Lets several processes on one machine form one cluster.
    /// </summary>
    [Range(1, 65535)]
    public int? PrimarySiloPort { get; set; }

    /// <summary>
    /// Silos only: the initial timeout of a liveness probe of another silo, which also paces the
    /// probes (Orleans adapts it between half and four times this). Unset, Orleans' default of 5 s.
    /// A silo killed without leaving is declared dead after about <see cref="NumMissedProbesLimit"/>
    /// probe periods; until then calls to the grains it hosted answer <c>unavailable</c>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan? ProbeTimeout { get; set; }

    /// <summary>Silos only: missed probes after which a silo is suspected and voted dead. Unset, Orleans' default of 3.</summary>
    [Range(1, 100)]
    public int? NumMissedProbesLimit { get; set; }

    /// <summary>
    /// Frontends with <see cref="ClusteringMode.AdoNet"/> only: how long a request waits for the
    /// cluster's answer before it is answered <c>unavailable</c> (default 10 s; Orleans' own is 30 s).
    /// A request that was on its way through a silo killed without leaving gets no answer at all,
    /// so this is the longest such a request stalls: keep it at or below the cluster's detection
    /// time (<see cref="ProbeTimeout"/> × <see cref="NumMissedProbesLimit"/>, plus a probe), and
    /// above the slowest honest call, a <c>send</c> to a slow socket (<c>ClientStore:PushTimeout</c>,
    /// default 5 s) plus a storage write.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ResponseTimeout { get; set; } = DefaultResponseTimeout;

    /// <summary>The default of <see cref="ResponseTimeout"/>.</summary>
    public static readonly TimeSpan DefaultResponseTimeout = TimeSpan.FromSeconds(10);
}
