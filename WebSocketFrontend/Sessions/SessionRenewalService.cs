using System.Collections.Immutable;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// Keeps this frontend's sessions alive in the cluster: renews every logged-in session with its
/// mailbox (which re-attaches it after a grain restart and pushes what waited), and renews the
/// frontend's lease on every directory shard (restoring its entries where a shard lost them).
/// A frontend that dies stops renewing; three missed renewals and the cluster forgets it.
/// </summary>
public sealed partial class SessionRenewalService(
    SessionRegistry registry,
    IGrainFactory grains,
    FrontendIdentity frontend,
    IOptions<ProtocolOptions> options,
    TimeProvider time,
    ILogger<SessionRenewalService> logger) : BackgroundService
{
    private const int Parallelism = 16;

    private readonly ProtocolOptions _options = options.Value;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(
            EveryAsync(_options.SessionRenewInterval, RenewSessionsAsync, stoppingToken),
            EveryAsync(_options.DirectoryLeaseInterval, RenewDirectoryAsync, stoppingToken));

    private async Task EveryAsync(TimeSpan period, Func<CancellationToken, Task> work, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await work(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRenewalFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    private Task RenewSessionsAsync(CancellationToken cancellationToken)
    {
        var logged = registry.Sessions.Where(s => s.Login is not null).ToArray();
        return Parallel.ForEachAsync(logged, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, async (session, _) =>
        {
            try
            {
                // Bounded per call: a call lost with a dying silo must not hold up the rest of the round.
                await session.RenewAsync(_options.SessionRenewInterval, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogSessionRenewalFailed(logger, ex, session.Id);
            }
        });
    }

    private Task RenewDirectoryAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, OnlineDirectory.ShardCount).Select(shard => RenewShardAsync(shard, cancellationToken)));

    private async Task RenewShardAsync(int shard, CancellationToken cancellationToken)
    {
        var directory = grains.Grain<IOnlineDirectoryGrain>(shard);
        try
        {
            // Bounded per shard, like sessions: one lost call must not let the other shards' leases lapse.
            if (await directory.Renew(frontend.Id, _options.DirectoryLease).WaitAsync(_options.DirectoryLeaseInterval, cancellationToken))
            {
                return;
            }

            // The shard restarted and lost its memory (or never knew this frontend): tell it again.
            var entries = registry.Sessions
                .Where(s => OnlineDirectory.ShardOf(s.Id) == shard && s.Login is not null)
                .Select(s => new OnlineEntry(s.Id, s.Login!.ClientId, frontend.Id))
                .ToImmutableArray();
            await directory.Restore(frontend.Id, entries, _options.DirectoryLease).WaitAsync(_options.DirectoryLeaseInterval, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogShardRenewalFailed(logger, ex, shard);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A renewal round failed; the next one tries again")]
    private static partial void LogRenewalFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Renewing the directory lease on shard {Shard} failed; the next round tries again")]
    private static partial void LogShardRenewalFailed(ILogger logger, Exception exception, int shard);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Renewing session {SessionId} failed; the next round tries again")]
    private static partial void LogSessionRenewalFailed(ILogger logger, Exception exception, string sessionId);
}
