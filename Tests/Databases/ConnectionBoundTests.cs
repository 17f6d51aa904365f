using System.Data;
using System.Globalization;
using Npgsql;
using Tests.Infrastructure;

namespace Tests.Databases;

/// <summary>
/// A gateway on PostgreSQL whose connection string sets no pool size opens at most
/// <c>Storage:MaxConnections</c> connections, however many requests arrive at once: a burst waits
/// for a pooled connection instead of exhausting the server's <c>max_connections</c>.
/// </summary>
public sealed class ConnectionBoundTests
{
    private const int Registrations = 200;
    private const int DefaultMaxConnections = 20;

    private static CancellationToken Cancelled => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ABareConnectionStringSurvivesTwoHundredConcurrentRegistrationsWithinTheDefaultBound()
    {
        DatabaseServer.PostgreSql.Require();
        await using var database = await DatabaseServer.PostgreSql.CreateDatabaseAsync();

        // What an operator writes without thinking of pools: Npgsql's own default would be 100 per process.
        var bare = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        bare.Remove("Maximum Pool Size");
        Assert.Equal(100, bare.MaxPoolSize);
        using var sqlite = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(sqlite.Path, new Dictionary<string, string>
        {
            ["Storage:Provider"] = "PostgreSql",
            ["Storage:ConnectionString"] = bare.ConnectionString,
            ["Limits:Enabled"] = "false",
        });

        var sockets = new List<WsClient>();
        try
        {
            for (var i = 0; i < Registrations; i++)
            {
                sockets.Add(await WsClient.ConnectAsync(server.WebSocketUri));
            }

            using var start = new SemaphoreSlim(0);
            var replies = sockets.Select((socket, i) => Task.Run(async () =>
            {
                await start.WaitAsync(Cancelled);
                return await socket.RequestAsync("register", new { information = new { name = $"burst-{i}" } });
            }, Cancelled)).ToArray();
            start.Release(Registrations);
            var answers = await Task.WhenAll(replies);

            var refused = answers.Where(a => a.Action() != "registered").Select(a => a.GetRawText()).ToArray();
            Assert.True(refused.Length == 0, $"{refused.Length} of {Registrations} registrations failed, first: {refused.FirstOrDefault()}");
            var ids = answers.Select(a => a.Parameters().GetProperty("id").GetInt32()).ToArray();
            Assert.Equal(Registrations, ids.Distinct().Count());

            // Idle pooled connections stay open for minutes: what the burst opened is still there to count
            // (client backends only: an autovacuum worker of the new database is not the gateway's).
            var open = await database.QueryAsync(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = @name AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                ("name", database.Name, DbType.String));
            var count = Convert.ToInt32(open[0][0], CultureInfo.InvariantCulture);
            Assert.InRange(count, 1, DefaultMaxConnections);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync();
            }
        }
    }
}
