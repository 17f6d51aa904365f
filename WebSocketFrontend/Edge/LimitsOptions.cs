using System.ComponentModel.DataAnnotations;

namespace WebSocketFrontend.Edge;

/// <summary>
/// Admission and per-address budgets, section <c>Limits</c>. Each default is meant for an open
/// network: it stops one address from exhausting the process or the database, and still lets a fleet
/// of 1,000 devices behind one NAT connect and register within a minute.
/// </summary>
public sealed class LimitsOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Limits";

    /// <summary>False lifts every per-address budget (benchmarks, trusted networks); the total cap and the per-socket request budget stay.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Open WebSocket connections this frontend accepts at most. Unset, it is derived from the process's
    /// file-descriptor limit: see <see cref="FileDescriptorLimit.DefaultMaxConnections"/>.
    /// </summary>
    [Range(1, 10_000_000)]
    public int? MaxConnections { get; set; }

    /// <summary>Open connections one address may hold (default 2,000: a NAT of 1,000 devices with room for reconnects; 0 turns it off).</summary>
    [Range(0, 10_000_000)]
    public int MaxConnectionsPerIp { get; set; } = 2000;

    /// <summary>New connections per second one address may sustain (default 20).</summary>
    [Range(0.001, 1_000_000)]
    public double ConnectionsPerSecondPerIp { get; set; } = 20;

    /// <summary>New connections one address may open at once above the sustained rate (default 1,000: a whole NAT fleet reconnecting).</summary>
    [Range(1, 1_000_000)]
    public int ConnectionBurstPerIp { get; set; } = 1000;

    /// <summary>Registrations per second one address may sustain (default 10).</summary>
    [Range(0.001, 1_000_000)]
    public double RegistrationsPerSecondPerIp { get; set; } = 10;

    /// <summary>Registrations one address may make at once above the sustained rate (default 500).</summary>
    [Range(1, 1_000_000)]
    public int RegistrationBurstPerIp { get; set; } = 500;

    /// <summary>Failed token checks per second one address may sustain once its burst is spent (default 1).</summary>
    [Range(0.001, 1_000_000)]
    public double FailedTokenChecksPerSecondPerIp { get; set; } = 1;

    /// <summary>Failed token checks one address may make before its token checks are refused (default 100).</summary>
    [Range(1, 1_000_000)]
    public int FailedTokenCheckBurstPerIp { get; set; } = 100;

    /// <summary>Addresses whose budgets are remembered at most (default 100,000); idle ones are forgotten first.</summary>
    [Range(16, 100_000_000)]
    public int MaxTrackedAddresses { get; set; } = 100_000;

    /// <summary>Proxies (addresses or CIDR networks) whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are believed; none by default.</summary>
    public List<string> TrustedProxies { get; set; } = [];
}
