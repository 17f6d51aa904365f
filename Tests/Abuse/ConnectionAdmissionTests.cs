using System.Net;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Hosting;

namespace Tests.Abuse;

/// <summary>
/// The attack: thousands of idle sockets from one address filled the process's file descriptors and
/// took readiness down with them. Connections past the caps are now refused before the upgrade.
/// </summary>
public sealed class ConnectionAdmissionTests
{
    [Fact]
    public async Task ConnectionsPastTheTotalCapAreRefusedWith503WhileReadinessKeepsAnswering()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:MaxConnections"] = "20",
        });
        var admission = server.Services.GetRequiredService<EdgeAdmission>();
        using var refusals = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.connections_refused");
        var held = new List<Upgrade>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var upgrade = await Upgrade.TryAsync(server.WebSocketUri);
                held.Add(upgrade);
                Assert.True(upgrade.Accepted, $"connection {i} under the cap was refused with {upgrade.Status}");
            }

            for (var i = 0; i < 10; i++)
            {
                await using var refused = await Upgrade.TryAsync(server.WebSocketUri);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
                Assert.True(int.TryParse(refused.RetryAfter, out var seconds) && seconds >= 1, $"Retry-After was '{refused.RetryAfter}'");
            }

            using var http = new HttpClient { BaseAddress = server.HttpUri, Timeout = TimeSpan.FromSeconds(20) };
            var ready = await http.GetAsync("/health/ready", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal(20, admission.Open);
            var metrics = await http.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
            Assert.Contains("gateway_connections_refused_total{otel_scope_name=\"Gateway\",reason=\"connections\"} 10", metrics);
            Assert.Equal(10, refusals.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], "connections")).Sum(m => m.Value));
            Assert.Equal(10, refusals.GetMeasurementSnapshot().Sum(m => m.Value));

            // A slot comes back when its socket ends.
            await held[0].DisposeAsync();
            held.RemoveAt(0);
            await WaitUntilAsync(() => admission.Open == 19);
            var again = await Upgrade.TryAsync(server.WebSocketUri);
            held.Add(again);
            Assert.True(again.Accepted);
        }
        finally
        {
            foreach (var upgrade in held)
            {
                await upgrade.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task OneAddressCannotHoldMoreThanItsShareOfConnections()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:MaxConnectionsPerIp"] = "3",
        });
        await using var first = await Upgrade.TryAsync(server.WebSocketUri);
        await using var second = await Upgrade.TryAsync(server.WebSocketUri);
        await using var third = await Upgrade.TryAsync(server.WebSocketUri);
        await using var fourth = await Upgrade.TryAsync(server.WebSocketUri);

        Assert.True(first.Accepted && second.Accepted && third.Accepted);
        Assert.Equal(HttpStatusCode.TooManyRequests, fourth.Status);
        Assert.NotNull(fourth.RetryAfter);
    }

    [Fact]
    public async Task AnAddressOpeningConnectionsTooFastIsRefusedWith429UntilItsBudgetRefills()
    {
        using var database = new TempDatabase();
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:ConnectionsPerSecondPerIp"] = "1",
            ["Limits:ConnectionBurstPerIp"] = "5",
        }, clock);

        var held = new List<Upgrade>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                held.Add(await Upgrade.TryAsync(server.WebSocketUri));
            }

            Assert.All(held, u => Assert.True(u.Accepted));
            await using (var refused = await Upgrade.TryAsync(server.WebSocketUri))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
                Assert.Equal("1", refused.RetryAfter);
            }

            clock.Advance(TimeSpan.FromSeconds(1));
            held.Add(await Upgrade.TryAsync(server.WebSocketUri));
            Assert.True(held[^1].Accepted);
            await using var tooSoon = await Upgrade.TryAsync(server.WebSocketUri);
            Assert.Equal(HttpStatusCode.TooManyRequests, tooSoon.Status);
        }
        finally
        {
            foreach (var upgrade in held)
            {
                await upgrade.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task ForwardedAddressesFromATrustedProxyGetBudgetsOfTheirOwnAndUntrustedOnesAreIgnored()
    {
        using var database = new TempDatabase();
        await using var trusting = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:MaxConnectionsPerIp"] = "1",
            ["Limits:TrustedProxies:0"] = "127.0.0.1",
        });
        await using var a = await Upgrade.TryAsync(trusting.WebSocketUri, new Dictionary<string, string> { ["X-Forwarded-For"] = "203.0.113.7" });
        await using var b = await Upgrade.TryAsync(trusting.WebSocketUri, new Dictionary<string, string> { ["X-Forwarded-For"] = "203.0.113.8" });
        await using var a2 = await Upgrade.TryAsync(trusting.WebSocketUri, new Dictionary<string, string> { ["X-Forwarded-For"] = "203.0.113.7" });
        Assert.True(a.Accepted && b.Accepted);
        Assert.Equal(HttpStatusCode.TooManyRequests, a2.Status);

        using var other = new TempDatabase();
        await using var untrusting = await GatewayServer.StartAsync(other.Path, new Dictionary<string, string>
        {
            ["Limits:MaxConnectionsPerIp"] = "1",
        });
        await using var c = await Upgrade.TryAsync(untrusting.WebSocketUri, new Dictionary<string, string> { ["X-Forwarded-For"] = "203.0.113.7" });
        await using var d = await Upgrade.TryAsync(untrusting.WebSocketUri, new Dictionary<string, string> { ["X-Forwarded-For"] = "203.0.113.8" });
        Assert.True(c.Accepted);
        Assert.Equal(HttpStatusCode.TooManyRequests, d.Status);
    }

    [Fact]
    public async Task LimitsDisabledLiftsThePerAddressCapsButNotTheTotal()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:Enabled"] = "false",
            ["Limits:MaxConnections"] = "6",
            ["Limits:MaxConnectionsPerIp"] = "1",
            ["Limits:ConnectionBurstPerIp"] = "1",
        });
        var held = new List<Upgrade>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                held.Add(await Upgrade.TryAsync(server.WebSocketUri));
            }

            Assert.All(held, u => Assert.True(u.Accepted));
            await using var overTotal = await Upgrade.TryAsync(server.WebSocketUri);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, overTotal.Status);
        }
        finally
        {
            foreach (var upgrade in held)
            {
                await upgrade.DisposeAsync();
            }
        }
    }

    [Fact]
    public void AnAttackerCyclingAddressesCannotGrowTheTableBeyondItsBound()
    {
        var clock = new FakeTimeProvider();
        var budgets = new AddressBudgets(Options.Create(new LimitsOptions { MaxTrackedAddresses = 64 }), clock);
        var leases = new List<ConnectionLease>();

        // Ten connections stay open: their addresses are never forgotten.
        for (var i = 0; i < 10; i++)
        {
            leases.Add(budgets.TryOpenConnection(IPAddress.Parse($"198.51.100.{i}"), out _)!);
        }

        for (var i = 0; i < 10_000; i++)
        {
            var address = new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);
            budgets.TryRegister(address, out _);
            budgets.RecordTokenFailure(address);
            Assert.True(budgets.TrackedAddresses <= 64, $"{budgets.TrackedAddresses} addresses tracked after {i}");
        }

        // The open connections kept their slots: with a per-address cap of one, a second is refused.
        var strict = new AddressBudgets(Options.Create(new LimitsOptions { MaxTrackedAddresses = 16, MaxConnectionsPerIp = 1 }), clock);
        using var held = strict.TryOpenConnection(IPAddress.Parse("198.51.100.1"), out _);
        for (var i = 0; i < 1000; i++)
        {
            strict.RecordTokenFailure(new IPAddress([10, 0, (byte)(i >> 8), (byte)i]));
        }

        Assert.Null(strict.TryOpenConnection(IPAddress.Parse("198.51.100.1"), out var refusal));
        Assert.Equal(AdmissionReason.ConnectionsPerIp, refusal.Reason);
        foreach (var lease in leases)
        {
            lease.Dispose();
        }
    }

    [Fact]
    public void IPv6ClientsAreBudgetedPerSlash64AndMappedIPv4AsIPv4()
    {
        Assert.Equal(
            AddressBudgets.KeyOf(IPAddress.Parse("2001:db8:1:2:aaaa::1")),
            AddressBudgets.KeyOf(IPAddress.Parse("2001:db8:1:2:bbbb::9")));
        Assert.NotEqual(
            AddressBudgets.KeyOf(IPAddress.Parse("2001:db8:1:2::1")),
            AddressBudgets.KeyOf(IPAddress.Parse("2001:db8:1:3::1")));
        Assert.Equal(IPAddress.Parse("192.0.2.1"), AddressBudgets.KeyOf(IPAddress.Parse("::ffff:192.0.2.1")));
    }

    [Fact]
    public void TheDefaultCapLeavesAReserveOfTheFileDescriptorLimit()
    {
        Assert.Equal(18_000, FileDescriptorLimit.DefaultMaxConnections(20_000));
        Assert.Equal(512, FileDescriptorLimit.DefaultMaxConnections(1024));
        Assert.Equal(FileDescriptorLimit.FallbackMaxConnections, FileDescriptorLimit.DefaultMaxConnections(null));
        Assert.Equal(20_000, FileDescriptorLimit.ParseSoftLimit(
        [
            "Limit                     Soft Limit           Hard Limit           Units",
            "Max open files            20000                40000                files",
        ]));
        Assert.Null(FileDescriptorLimit.ParseSoftLimit(["Max open files            unlimited            unlimited            files"]));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.True(condition(), "the condition did not hold within 10 s");
    }
}
