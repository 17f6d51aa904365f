using System.Data;
using System.Net;
using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Tests.Infrastructure;

namespace Tests.Databases;

/// <summary>
/// ADO.NET clustering on a database server: real silo hosts meeting in the membership table, the
/// frontend as a pure Orleans client that finds them through the gateway list, the membership
/// queries' version checks, and the schema applied by several processes at once.
/// Each test has a database of its own.
/// </summary>
public abstract class ServerClusteringTests(DatabaseServer server)
{
    private const string ActiveStatus = "3";

    [Fact]
    public async Task TwoSilosFormAClusterAndAFrontendClientServesThroughTheGatewayList()
    {
        server.Require();
        await using var database = await server.CreateDatabaseAsync();
        var settings = database.Settings(NewClusterId());
        await using var first = await SiloServer.StartAsync(settings);
        await using var second = await SiloServer.StartAsync(settings);

        await WaitUntilAsync(async () => (await first.Grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count == 2,
            "the two silos never saw each other as active");
        var gateways = await database.QueryAsync(
            "SELECT Address, ProxyPort FROM ClusterMember WHERE DeploymentId = @id AND Status = 3",
            ("id", settings["Cluster:ClusterId"], DbType.String));
        Assert.Equal(2, gateways.Count);
        Assert.All(gateways, g => Assert.Equal("127.0.0.1", g[0]));

        await using var frontend = await GatewayServer.StartAsync("unused.db", new Dictionary<string, string>(settings) { ["Protocol:ClientSend"] = "any" });
        Assert.Null(frontend.Services.GetService<ISiloStatusOracle>());
        await using var recipient = await WsClient.ConnectAsync(frontend.WebSocketUri);
        var (recipientToken, recipientId) = await RetryWhileUnavailableAsync(() => recipient.RequestAsync("register", new { information = new { name = "recipient" } }));
        Assert.Equal("logged", (await recipient.RequestAsync("login", new { token = recipientToken })).Action());

        // The push goes from a grain on one of the silos to the frontend client's observer.
        await using var sender = await WsClient.ConnectAsync(frontend.WebSocketUri);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        var sent = await sender.RequestAsync("send", new { token = senderToken, to = recipientId, payload = new { hello = 1 } });
        Assert.Equal("sent", sent.Action());
        Assert.Equal("online", sent.Parameters().GetProperty("delivered").GetString());
        var push = await recipient.NextPushAsync();
        Assert.Equal("response", push.Action());
        Assert.Equal("""{"hello":1}""", push.Parameters().GetProperty("payload").GetRawText());
    }

    [Fact]
    public async Task AFrontendStartedBeforeAnySiloAnswersUnavailableThenServesOnceOneIsUp()
    {
        server.Require();
        await using var database = await server.CreateDatabaseAsync();
        var settings = database.Settings(NewClusterId());

        // No silo and not even a schema yet: the frontend still starts and answers.
        await using var frontend = await GatewayServer.StartAsync("unused.db", settings);
        await using var client = await WsClient.ConnectAsync(frontend.WebSocketUri);
        var early = await client.RequestAsync("register", new { information = new { name = "early" } });
        Assert.Equal("unavailable", early.ErrorCode());
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        using (var http = new HttpClient { BaseAddress = frontend.HttpUri, Timeout = WsClient.Timeout })
        {
            using var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }

        await using var silo = await SiloServer.StartAsync(settings);

        var (token, id) = await RetryWhileUnavailableAsync(() => client.RequestAsync("register", new { information = new { name = "late" } }));
        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task AFrontendClientWhoseOnlySiloStopsAnswersUnavailableAndMovesToTheNextSilo()
    {
        server.Require();
        await using var database = await server.CreateDatabaseAsync();
        var settings = database.Settings(NewClusterId());
        await using var first = await SiloServer.StartAsync(settings);
        await using var frontend = await GatewayServer.StartAsync("unused.db", settings);
        await using var client = await WsClient.ConnectAsync(frontend.WebSocketUri);
        var (token, id) = await RetryWhileUnavailableAsync(() => client.RequestAsync("register", new { information = new { name = "kept" } }));

        await first.StopAsync();

        // No silo at all: answered (within the socket's 20-second bound), and the socket stays open.
        var during = await client.RequestAsync("update", new { token, information = new { name = "during" } });
        Assert.Equal("unavailable", during.ErrorCode());

        await using var second = await SiloServer.StartAsync(settings);
        var (_, next) = await RetryWhileUnavailableAsync(() => client.RequestAsync("register", new { information = new { name = "after" } }));
        Assert.NotEqual(id, next);
        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("""{"name":"kept"}""", logged.Parameters().GetProperty("information").GetRawText());
    }

    [Fact]
    public async Task SchemaAppliedByManyAtOnceAndAgainLeavesOneCopyOfEverything()
    {
        server.Require();
        await using var database = await server.CreateDatabaseAsync();
        var schema = StorageDatabase.ForServer(server.Provider, database.ConnectionString, "test", 30);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => schema.ApplySchemaAsync(TestContext.Current.CancellationToken))));
        await schema.ApplySchemaAsync(TestContext.Current.CancellationToken);

        var keys = (await database.QueryAsync("SELECT QueryKey FROM OrleansQuery")).Select(r => (string)r[0]!).Order().ToArray();
        Assert.Equal(QueryKeys.All.Order(), keys);
        foreach (var table in new[] { "GrainState", "ClusterVersion", "ClusterMember" })
        {
            Assert.Equal(0L, Convert.ToInt64(Assert.Single(await database.QueryAsync($"SELECT COUNT(*) FROM {table}"))[0], System.Globalization.CultureInfo.InvariantCulture));
        }

        // The exact query both providers start with, unquoted identifiers and all.
        var storageQueries = await database.QueryAsync(
            "SELECT QueryKey, QueryText FROM OrleansQuery WHERE QueryKey = 'WriteToStorageKey' OR QueryKey = 'ReadFromStorageKey' OR QueryKey = 'ClearStorageKey' OR QueryKey = 'DeleteStorageKey'");
        Assert.Equal(4, storageQueries.Count);
        Assert.All(storageQueries, r => Assert.IsType<string>(r[1]));
    }

    [Fact]
    public async Task MembershipChangesOnlyAtTheVersionThatWasRead()
    {
        server.Require();
        await using var database = await server.CreateDatabaseAsync();
        await StorageDatabase.ForServer(server.Provider, database.ConnectionString, "test", 30).ApplySchemaAsync(TestContext.Current.CancellationToken);
        var membership = new StoredQueries(database);
        var cluster = NewClusterId();
        var now = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);

        Assert.True(await membership.BooleanAsync("InsertMembershipVersionKey", ("DeploymentId", cluster, DbType.String)));
        Assert.False(await membership.BooleanAsync("InsertMembershipVersionKey", ("DeploymentId", cluster, DbType.String)));
        var empty = await membership.RowsAsync("MembershipReadAllKey", ("DeploymentId", cluster, DbType.String));
        Assert.Equal(0, Assert.Single(empty).Get<int>("Version"));
        Assert.Null(empty[0].Get<DateTime?>("StartTime"));

        Assert.True(await membership.BooleanAsync("InsertMembershipKey", Member(cluster, 1111, now, version: 0)));
        Assert.False(await membership.BooleanAsync("InsertMembershipKey", Member(cluster, 1111, now, version: 1)));
        Assert.False(await membership.BooleanAsync("InsertMembershipKey", Member(cluster, 2222, now, version: 0)));
        Assert.True(await membership.BooleanAsync("InsertMembershipKey", Member(cluster, 2222, now, version: 1)));

        var all = await membership.RowsAsync("MembershipReadAllKey", ("DeploymentId", cluster, DbType.String));
        Assert.Equal(2, all.Count);
        Assert.All(all, r => Assert.Equal(2, r.Get<int>("Version")));
        Assert.All(all, r => Assert.Equal("127.0.0.1", r.Get<string>("Address")));
        Assert.Equal(now, all[0].Get<DateTime>("StartTime"));
        Assert.Equal("silo-1111", all.Single(r => r.Get<int>("Port") == 1111).Get<string>("SiloName"));

        // A status change at a stale version changes nothing; at the current one it moves the version on.
        Assert.False(await membership.BooleanAsync("UpdateMembershipKey", Update(cluster, 1111, now, status: 6, version: 1)));
        Assert.False(await membership.BooleanAsync("UpdateMembershipKey", Update(cluster, 3333, now, status: 6, version: 2)));
        Assert.True(await membership.BooleanAsync("UpdateMembershipKey", Update(cluster, 1111, now, status: 6, version: 2)));
        var row = Assert.Single(await membership.RowsAsync("MembershipReadRowKey", Key(cluster, 1111)));
        Assert.Equal((6, 3, "127.0.0.1:2222@7,2026-01-02 03:04:05.000 GMT"), (row.Get<int>("Status"), row.Get<int>("Version"), row.Get<string>("SuspectTimes")));
        var missing = Assert.Single(await membership.RowsAsync("MembershipReadRowKey", Key(cluster, 4444)));
        Assert.Equal(3, missing.Get<int>("Version"));
        Assert.Null(missing.Get<DateTime?>("StartTime"));

        // The heartbeat leaves the version alone.
        await membership.RowsAsync("UpdateIAmAlivetimeKey", [.. Key(cluster, 2222), ("IAmAliveTime", now.AddMinutes(5), DbType.DateTime)]);
        var alive = (await membership.RowsAsync("MembershipReadAllKey", ("DeploymentId", cluster, DbType.String))).Single(r => r.Get<int>("Port") == 2222);
        Assert.Equal((now.AddMinutes(5), 3), (alive.Get<DateTime>("IAmAliveTime"), alive.Get<int>("Version")));

        var gateways = await membership.RowsAsync("GatewaysQueryKey", ("DeploymentId", cluster, DbType.String), ("Status", 3, DbType.Int32));
        Assert.Equal([("127.0.0.1", 30222, 7)], gateways.Select(g => (g.Get<string>("Address"), g.Get<int>("ProxyPort"), g.Get<int>("Generation"))));

        // Clean-up takes the dead silo that stopped beating before the cut-off, not the active one.
        await membership.RowsAsync("CleanupDefunctSiloEntriesKey", ("DeploymentId", cluster, DbType.String), ("IAmAliveTime", now.AddMinutes(10), DbType.DateTime));
        Assert.Equal([2222], (await membership.RowsAsync("MembershipReadAllKey", ("DeploymentId", cluster, DbType.String))).Select(r => r.Get<int>("Port")));

        await membership.RowsAsync("DeleteMembershipTableEntriesKey", ("DeploymentId", cluster, DbType.String));
        Assert.Empty(await membership.RowsAsync("MembershipReadAllKey", ("DeploymentId", cluster, DbType.String)));
    }

    private static string NewClusterId() => $"cluster-{Guid.NewGuid():N}";

    private static (string, object?, DbType)[] Key(string cluster, int port) =>
    [
        ("DeploymentId", cluster, DbType.String),
        ("Address", "127.0.0.1", DbType.AnsiString),
        ("Port", port, DbType.Int32),
        ("Generation", 7, DbType.Int32),
    ];

    private static (string, object?, DbType)[] Member(string cluster, int port, DateTime now, int version) =>
    [
        .. Key(cluster, port),
        ("IAmAliveTime", now, DbType.DateTime),
        ("SiloName", $"silo-{port}", DbType.String),
        ("HostName", "test-host", DbType.String),
        ("StartTime", now, DbType.DateTime),
        ("Status", 3, DbType.Int32),
        ("ProxyPort", 30000 + (port % 1000), DbType.Int32),
        ("Version", version, DbType.Int32),
    ];

    private static (string, object?, DbType)[] Update(string cluster, int port, DateTime now, int status, int version) =>
    [
        .. Key(cluster, port),
        ("IAmAliveTime", now, DbType.DateTime),
        ("Status", status, DbType.Int32),
        ("SuspectTimes", "127.0.0.1:2222@7,2026-01-02 03:04:05.000 GMT", DbType.String),
        ("Version", version, DbType.Int32),
    ];

    private static async Task<(string Token, int Id)> RetryWhileUnavailableAsync(Func<Task<System.Text.Json.JsonElement>> register)
    {
        for (var attempt = 0; attempt < 120; attempt++)
        {
            var reply = await register();
            if (reply.ErrorCode() != "unavailable")
            {
                Assert.Equal("registered", reply.Action());
                var parameters = reply.Parameters();
                return (parameters.GetProperty("token").GetString()!, parameters.GetProperty("id").GetInt32());
            }

            await Task.Delay(500, TestContext.Current.CancellationToken);
        }

        Assert.Fail("The frontend never reached the cluster.");
        return default;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure)
    {
        for (var attempt = 0; attempt < 120; attempt++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(250, TestContext.Current.CancellationToken);
        }

        Assert.Fail(failure);
    }
}

public sealed class PostgreSqlClusteringTests() : ServerClusteringTests(DatabaseServer.PostgreSql);

public sealed class SqlServerClusteringTests() : ServerClusteringTests(DatabaseServer.SqlServer);
