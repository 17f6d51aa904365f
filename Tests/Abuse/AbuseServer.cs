using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using WebSocketFrontend.Sessions;

namespace Tests.Abuse;

/// <summary>A gateway of its own whose sockets run on a fake clock; the grains keep the real one.</summary>
public sealed class AbuseServer : IAsyncDisposable
{
    private readonly TempDatabase _database;

    private AbuseServer(TempDatabase database, GatewayServer server, FakeTimeProvider clock)
    {
        _database = database;
        Server = server;
        Clock = clock;
    }

    public GatewayServer Server { get; }

    /// <summary>The clock of every socket: budgets, deadlines and timeouts move only when a test advances it.</summary>
    public FakeTimeProvider Clock { get; }

    public Uri WebSocketUri => Server.WebSocketUri;

    public string Snapshot() => _database.Snapshot();

    public static async Task<AbuseServer> StartAsync(IReadOnlyDictionary<string, string>? settings = null)
    {
        var database = new TempDatabase();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        try
        {
            var server = await GatewayServer.StartAsync(database.Path, settings, services: services =>
                services.AddSingleton(sp => ActivatorUtilities.CreateInstance<SessionServices>(sp, (TimeProvider)clock)));
            return new AbuseServer(database, server, clock);
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _database.Dispose();
    }
}
