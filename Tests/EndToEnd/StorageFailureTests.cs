using Microsoft.Data.Sqlite;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

/// <summary>Storage that refuses writes or reads: the client hears <c>unavailable</c>, nothing changes, and a retry later works.</summary>
public sealed class StorageFailureTests
{
    [Fact]
    public async Task LockedDatabaseAnswersUnavailableAndRetryingAfterwardsWorks()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            // Statements give up on a locked database after one second instead of thirty.
            ["Storage:CommandTimeoutSeconds"] = "1",
        });
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, _) = await client.RegisterAsync(new { name = "before" });
        var stored = database.Snapshot();

        using (var blocker = await LockForWritingAsync(database.Path))
        {
            var register = await client.RequestAsync("register", new { information = new { name = "during" } });
            Assert.Equal("unavailable", register.ErrorCode());
            Assert.Equal("register", register.Parameters().GetProperty("request").GetString());

            var update = await client.RequestAsync("update", new { token, information = new { name = "during" } });
            Assert.Equal("unavailable", update.ErrorCode());

            // The server keeps serving what needs no write.
            Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        }

        Assert.Equal(stored, database.Snapshot());

        Assert.Equal("updated", (await client.RequestAsync("update", new { token, information = new { name = "after" } })).Action());
        var (_, id) = await client.RegisterAsync(new { name = "after" });
        Assert.True(id > 0);
        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("""{"name":"after"}""", logged.Parameters().GetProperty("information").GetRawText());
    }

    [Fact]
    public async Task AFailingReadAnswersUnavailableKeepsTheServerUpAndRetryingAfterwardsWorks()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, _) = await client.RegisterAsync(new { name = "before" });
        var stored = database.Snapshot();

        // Reads of grain state fail while the table is away: a new token's record cannot be read, so
        // its registration fails before anything is written. Renaming needs no lock the gateway holds.
        Execute(database.Path, "ALTER TABLE GrainState RENAME TO GrainStateAway;");
        var register = await client.RequestAsync("register", new { information = new { name = "during" } });
        Assert.Equal("unavailable", register.ErrorCode());
        Assert.Equal("register", register.Parameters().GetProperty("request").GetString());
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        Execute(database.Path, "ALTER TABLE GrainStateAway RENAME TO GrainState;");

        Assert.Equal(stored, database.Snapshot());

        // The same socket goes on: a registration reads its new grains again, and the first client still logs in.
        var (newToken, id) = await client.RegisterAsync(new { name = "after" });
        Assert.True(id > 0);
        await using var other = await WsClient.ConnectAsync(server.WebSocketUri);
        Assert.Equal("""{"name":"after"}""", (await other.RequestAsync("login", new { token = newToken })).Parameters().GetProperty("information").GetRawText());
        Assert.Equal("""{"name":"before"}""", (await client.RequestAsync("login", new { token })).Parameters().GetProperty("information").GetRawText());
    }

    private static void Execute(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Another connection holding the write lock, as a long transaction or a stuck process would.</summary>
    private static async Task<SqliteConnection> LockForWritingAsync(string path)
    {
        var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "BEGIN EXCLUSIVE;";
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        return connection;
    }
}
