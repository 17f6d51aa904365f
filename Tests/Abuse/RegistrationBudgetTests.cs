using System.Globalization;
using Grains.Interfaces;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using WebSocketFrontend.Edge;

namespace Tests.Abuse;

/// <summary>
/// The attack: 200 sockets created 15,169 clients in 10 s and the database grew without bound.
/// Registrations from one address now have a budget, checked before any grain call.
/// </summary>
public sealed class RegistrationBudgetTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-11-30T12:00:00Z", CultureInfo.InvariantCulture);

    [Fact]
    public async Task ARegistrationFloodFromOneAddressStopsAtTheDefaultBudgetAndTheDatabaseStopsWithIt()
    {
        using var database = new TempDatabase();
        var clock = new FakeTimeProvider(Start);
        await using var server = await GatewayServer.StartAsync(database.Path, time: clock);
        var burst = new LimitsOptions().RegistrationBurstPerIp;
        const int Sockets = 4;
        var perSocket = (burst / Sockets) + 15;

        var outcomes = await Task.WhenAll(Enumerable.Range(0, Sockets).Select(async _ =>
        {
            await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
            var codes = new List<string>();
            for (var i = 0; i < perSocket; i++)
            {
                var reply = await client.RequestAsync("register", new { information = new { name = "flood" } });
                codes.Add(reply.ErrorCode() ?? reply.Action());
            }

            return codes;
        }));

        var all = outcomes.SelectMany(c => c).ToList();
        Assert.Equal(burst, all.Count(c => c == "registered"));
        Assert.Equal((Sockets * perSocket) - burst, all.Count(c => c == "rate_limited"));
        Assert.Equal(burst, StoredClients(database.Path));

        // The budget refills with time: ten more per second by default.
        clock.Advance(TimeSpan.FromSeconds(1));
        await using var later = await WsClient.ConnectAsync(server.WebSocketUri);
        for (var i = 0; i < 10; i++)
        {
            await later.RegisterAsync(new { name = "later" });
        }

        Assert.Equal("rate_limited", (await later.RequestAsync("register", new { information = new { } })).ErrorCode());
        Assert.Equal(burst + 10, StoredClients(database.Path));
    }

    [Fact]
    public async Task TheDefaultsLetAThousandDevicesBehindOneAddressRegisterWithinAMinute()
    {
        var limits = new LimitsOptions();

        // 200 at once fit the burst, and the burst plus a minute of refill covers a fleet of 1,000.
        Assert.True(limits.RegistrationBurstPerIp >= 200);
        Assert.True(limits.RegistrationBurstPerIp + (60 * limits.RegistrationsPerSecondPerIp) >= 1000);
        Assert.True(limits.ConnectionBurstPerIp >= 1000);
        Assert.True(limits.MaxConnectionsPerIp is 0 or >= 1000);

        // ...and nowhere near the 1,491 registrations per second of the attack.
        Assert.True(limits.RegistrationsPerSecondPerIp <= 20);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task WithLimitsDisabledRegistrationsAreNotBudgeted()
    {
        using var database = new TempDatabase();
        var clock = new FakeTimeProvider(Start);
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Limits:Enabled"] = "false",
            ["Limits:RegistrationBurstPerIp"] = "2",
            ["Limits:FailedTokenCheckBurstPerIp"] = "2",
        }, clock);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);

        for (var i = 0; i < 10; i++)
        {
            await client.RegisterAsync(new { name = "bench" });
            Assert.Equal("invalid_token", (await client.RequestAsync("login", new { token = TokenDigest.NewToken() })).ErrorCode());
        }

        Assert.Equal(10, StoredClients(database.Path));
    }

    [Fact]
    public async Task WithARegistrationKeyOnlyRegistrationsCarryingItAreAccepted()
    {
        using var database = new TempDatabase();
        const string Key = "fleet-registration-key-0123456789";
        var clock = new FakeTimeProvider(Start);
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RegistrationKey"] = Key,
        }, clock);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);

        Assert.Equal("forbidden", (await client.RequestAsync("register", new { information = new { name = "a" } })).ErrorCode());
        Assert.Equal("forbidden", (await client.RequestAsync("register", new { information = new { name = "a" }, key = Key + "x" })).ErrorCode());
        Assert.Equal("forbidden", (await client.RequestAsync("register", new { information = new { name = "a" }, key = 42 })).ErrorCode());
        Assert.Equal(0, StoredClients(database.Path));

        var reply = await client.RequestAsync("register", new { information = new { name = "a" }, key = Key });
        Assert.Equal("registered", reply.Action());
        Assert.Equal(1, StoredClients(database.Path));
        var login = await client.RequestAsync("login", new { token = reply.Parameters().GetProperty("token").GetString() });
        Assert.Equal("logged", login.Action());

        // Guessing the key spends the address's failure budget; then even the right key waits.
        var budget = new LimitsOptions().FailedTokenCheckBurstPerIp;
        for (var i = 3; i < budget; i++)
        {
            Assert.Equal("forbidden", (await client.RequestAsync("register", new { information = new { }, key = $"guess-{i}" })).ErrorCode());
        }

        Assert.Equal("rate_limited", (await client.RequestAsync("register", new { information = new { }, key = Key })).ErrorCode());
        Assert.Equal(1, StoredClients(database.Path));
    }

    private static long StoredClients(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM GrainState WHERE GrainType = 'client'";
        return (long)command.ExecuteScalar()!;
    }
}
