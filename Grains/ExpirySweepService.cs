using Grains.Interfaces;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Grains;

/// <summary>
/// Runs on every silo when <see cref="ClientStoreOptions.ExpireNeverLoggedInAfter"/> is set and asks
/// the cluster's one <see cref="IExpirySweeperGrain"/> for a batch every
/// <see cref="ClientStoreOptions.ExpirySweepInterval"/>. Any silo keeps the sweep going, so it
/// survives the loss or restart of the silo that holds the sweeper.
/// </summary>
public sealed partial class ExpirySweepService(
    IGrainFactory grains,
    IOptions<ClientStoreOptions> options,
    TimeProvider time,
    ILogger<ExpirySweepService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.ExpireNeverLoggedInAfter is not { } age)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.ExpirySweepInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var expired = await grains.Grain<IExpirySweeperGrain>(Names.ExpirySweeperKey).SweepBatch(time.GetUtcNow() - age);
                if (expired > 0)
                {
                    LogExpired(logger, expired);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The next tick tries again from the stored place.
                LogSweepFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} clients that never logged in")]
    private static partial void LogExpired(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of the expiry sweep failed; the next one tries again")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
