using System.Diagnostics.Metrics;
using System.Globalization;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using Orleans;
using Tests.Infrastructure;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Hosting;

namespace Tests.Abuse;

/// <summary>
/// The attack: 20 sockets made 5,622 random-token logins per second, each costing an activation and a
/// storage read. After a budget of failures, an address's token checks are refused before any grain call.
/// </summary>
public sealed class TokenFailureBudgetTests
{
    [Fact]
    public async Task ARandomTokenFloodIsRefusedWithoutGrainCallsOnceTheFailureBudgetIsSpent()
    {
        using var database = new TempDatabase();
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", CultureInfo.InvariantCulture));
        var calls = new ClientGrainCalls();
        await using var server = await GatewayServer.StartAsync(database.Path, time: clock, services: s => s.AddSingleton<IIncomingGrainCallFilter>(calls));
        using var failures = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.token_failures");
        using var refusals = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.budget_refusals");
        await using var owner = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await owner.RegisterAsync(new { name = "victim" });

        var budget = new LimitsOptions().FailedTokenCheckBurstPerIp;
        await using var attacker = await WsClient.ConnectAsync(server.WebSocketUri);
        for (var i = 0; i < budget; i++)
        {
            // A tenth of them are not even shaped like a token: they count as failures as well.
            var guess = i % 10 == 0 ? "nope" : TokenDigest.NewToken();
            Assert.Equal("invalid_token", (await attacker.RequestAsync("login", new { token = guess })).ErrorCode());
        }

        Assert.Equal(budget, failures.GetMeasurementSnapshot().Sum(m => m.Value));
        var callsAtThreshold = calls.Count;
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal("rate_limited", (await attacker.RequestAsync("login", new { token = TokenDigest.NewToken() })).ErrorCode());
        }

        Assert.Equal("rate_limited", (await attacker.RequestAsync("update", new { token = TokenDigest.NewToken(), information = new { } })).ErrorCode());

        // The address as a whole is backing off, the right token included, and no grain was called for any of it.
        Assert.Equal("rate_limited", (await attacker.RequestAsync("login", new { token })).ErrorCode());
        Assert.Equal(callsAtThreshold, calls.Count);
        Assert.Equal(52, refusals.GetMeasurementSnapshot().Where(m => Equals(m.Tags["budget"], "token_failures")).Sum(m => m.Value));
        Assert.Equal(budget, failures.GetMeasurementSnapshot().Sum(m => m.Value));

        // The budget comes back with time.
        clock.Advance(TimeSpan.FromSeconds(5));
        var logged = await attacker.RequestAsync("login", new { token });
        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
    }

    /// <summary>Counts calls that reach a client grain (each one an activation and a storage read for an unknown token).</summary>
    private sealed class ClientGrainCalls : IIncomingGrainCallFilter
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.InterfaceMethod?.DeclaringType == typeof(IClientGrain))
            {
                Interlocked.Increment(ref _count);
            }

            return context.Invoke();
        }
    }
}
