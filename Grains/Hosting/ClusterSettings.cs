using System.ComponentModel.DataAnnotations;

namespace Grains.Hosting;

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

    /// <summary>The co-hosted silo's port for silo-to-silo traffic (default 11111).</summary>
    [Range(0, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>The co-hosted silo's port for Orleans clients (default 30000).</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// With localhost clustering, the silo port of the cluster's first silo on this machine; unset,
    /// this silo is that first silo. Lets several processes on one machine form one cluster.
    /// </summary>
    [Range(1, 65535)]
    public int? PrimarySiloPort { get; set; }
}
