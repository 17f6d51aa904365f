using Grains.Interfaces;

namespace WebSocketFrontend.Hosting;

/// <summary>Whether the frontend's Orleans client has connected to the cluster yet.</summary>
public sealed class ClusterConnectionState
{
    private volatile bool _connected;

    /// <summary>True once the client has connected; after that Orleans itself reports lost gateways.</summary>
    public bool IsConnected => _connected;

    internal void MarkConnected() => _connected = true;
}

/// <summary>
/// Starts the Orleans client in the background, so the web host does not wait for a silo; the
/// client's retry filter (<see cref="KeepConnecting"/>) keeps it trying until a gateway answers or
/// the host stops.
/// </summary>
public sealed partial class ClusterConnection(IClusterClient client, ClusterConnectionState state, ILogger<ClusterConnection> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _connecting = Task.CompletedTask;

    private IHostedService Client => client as IHostedService
        ?? throw new InvalidOperationException("The Orleans cluster client is expected to be a hosted service.");

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _connecting = Task.Run(ConnectAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _connecting.WaitAsync(cancellationToken);
        try
        {
            await Client.StopAsync(cancellationToken);
        }
        catch (Exception ex) when (!state.IsConnected && ex is not OperationCanceledException)
        {
            // A client that never connected has little to stop; what it had is released with the container.
            LogStopFailed(logger, ex);
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task ConnectAsync()
    {
        try
        {
            await Client.StartAsync(_stopping.Token);
            state.MarkConnected();
            LogConnected(logger);
        }
        catch (Exception ex) when (_stopping.IsCancellationRequested)
        {
            LogStoppedBeforeConnecting(logger, ex.GetType().Name);
        }
        catch (Exception ex)
        {
            // Only a retry filter that gives up gets here; KeepConnecting does not, short of stopping.
            LogGaveUp(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected to the Orleans cluster")]
    private static partial void LogConnected(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped before the cluster answered ({Reason})")]
    private static partial void LogStoppedBeforeConnecting(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Gave up connecting to the Orleans cluster; every request is answered 'unavailable'")]
    private static partial void LogGaveUp(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stopping the never-connected Orleans client failed")]
    private static partial void LogStopFailed(ILogger logger, Exception exception);
}

/// <summary>
/// Retries the first connection for as long as the host runs (no silo yet, no membership table
/// yet, a database that does not answer), waiting a little longer each time, up to 5 seconds.
/// </summary>
public sealed partial class KeepConnecting(ILogger<KeepConnecting> logger) : IClientConnectionRetryFilter
{
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);
    private int _attempts;

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        var attempt = Interlocked.Increment(ref _attempts);
        LogWaiting(logger, attempt, exception.Message);
        var delay = TimeSpan.FromMilliseconds(Math.Min(MaxDelay.TotalMilliseconds, 250.0 * attempt));
        try
        {
            await Task.Delay(delay, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No Orleans gateway yet (attempt {Attempt}): {Reason}; retrying")]
    private static partial void LogWaiting(ILogger logger, int attempt, string reason);
}

/// <summary>
/// Until the client has connected, a call to one of our grains fails at once with a clear reason;
/// the request handler answers it <c>unavailable</c>. Mostly Orleans fails such a call even
/// earlier (before the cluster's manifest arrives, <c>GetGrain</c> knows no grain class), but once
/// the manifest is in and the start has not finished, the call would reach a half-started client.
/// Orleans' own start-up calls (to system targets) pass.
/// </summary>
public sealed class FailFastWhileDisconnected(ClusterConnectionState state) : IOutgoingGrainCallFilter
{
    public Task Invoke(IOutgoingGrainCallContext context)
    {
        if (!state.IsConnected && context.InterfaceMethod?.DeclaringType?.Assembly == typeof(IClientGrain).Assembly)
        {
            throw new SiloUnavailableException("Not connected to the Orleans cluster yet; the client keeps trying.");
        }

        return context.Invoke();
    }
}
