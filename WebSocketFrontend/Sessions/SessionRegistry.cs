using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// The open connections of this frontend, whatever their transport. On shutdown it closes them all before the hosted services
/// (the co-hosted silo among them) stop, so that their sessions can still be logged out.
/// </summary>
public sealed partial class SessionRegistry(IOptions<ProtocolOptions> options, ILogger<SessionRegistry> logger) : IHostedLifecycleService
{
    private readonly ConcurrentDictionary<string, (ClientSession Session, Task Running)> _sessions = new(StringComparer.Ordinal);

    public int Count => _sessions.Count;

    /// <summary>The open sockets at this moment.</summary>
    public IEnumerable<ClientSession> Sessions => _sessions.Values.Select(e => e.Session);

    /// <summary>Serves a session until it closes: the entry point of every transport, with a new <see cref="ClientSession"/> over it.</summary>
    public async Task ServeAsync(ClientSession session, CancellationToken requestAborted)
    {
        var running = session.RunAsync(requestAborted);
        _sessions[session.Id] = (session, running);
        try
        {
            await running;
        }
        finally
        {
            _sessions.TryRemove(session.Id, out _);
            session.Dispose();
        }
    }

    public bool TryGet(string connectionId, out ClientSession? session)
    {
        var found = _sessions.TryGetValue(connectionId, out var entry);
        session = entry.Session;
        return found;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var open = _sessions.Values.ToArray();
        if (open.Length == 0)
        {
            return;
        }

        LogClosingAll(logger, open.Length);
        foreach (var (session, _) in open)
        {
            session.RequestClose(CloseReason.GoingAway, "server shutting down");
        }

        // Each session aborts itself after the close timeout; this bound only guards against a stuck one.
        var all = Task.WhenAll(open.Select(s => s.Running));
        var bound = options.Value.CloseTimeout + TimeSpan.FromSeconds(2);
        try
        {
            await all.WaitAsync(bound, cancellationToken);
        }
        catch (TimeoutException)
        {
            LogCloseTimedOut(logger, _sessions.Count);
            foreach (var (session, _) in _sessions.Values)
            {
                session.Abort();
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Closing {Count} open sockets for shutdown")]
    private static partial void LogClosingAll(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} sockets did not close in time and were aborted")]
    private static partial void LogCloseTimedOut(ILogger logger, int count);
}
