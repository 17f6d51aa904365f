namespace ClientManagement.Client;

/// <summary>Settings of a <see cref="GatewayClient"/>; every one has a default but <see cref="Uri"/>.</summary>
public sealed class GatewayClientOptions
{
    /// <summary>The gateway's WebSocket address, <c>ws://host:port/ws</c> or <c>wss://...</c>. Required.</summary>
    public Uri? Uri { get; set; }

    /// <summary>The event name of server messages (default <c>instace.to.client</c>, as the specification spells it).</summary>
    public string ReplyEvent { get; set; } = "instace.to.client";

    /// <summary>How long a request waits for its reply, reconnection included, before <see cref="TimeoutException"/> (default 30 s).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long opening a WebSocket may take (default 10 s).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a close handshake may take before the socket is aborted (default 5 s).</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest server message accepted, in bytes (default 4 MiB); a larger one drops the connection.</summary>
    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>When and how often to reconnect after the connection is lost.</summary>
    public ReconnectPolicy Reconnect { get; set; } = new();

    /// <summary>The clock of timeouts and back-offs (default <see cref="TimeProvider.System"/>); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The source of back-off jitter (default <see cref="Random.Shared"/>); tests pass a seeded one.</summary>
    public Random Random { get; set; } = Random.Shared;

    /// <summary>Changes the socket before it connects (headers such as <c>Origin</c>, a proxy, certificates); none by default.</summary>
    public Action<System.Net.WebSockets.ClientWebSocketOptions>? ConfigureSocket { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (Uri is null || !Uri.IsAbsoluteUri || (Uri.Scheme != "ws" && Uri.Scheme != "wss"))
        {
            throw new ArgumentException("Uri must be an absolute ws:// or wss:// address.", nameof(Uri));
        }

        ArgumentException.ThrowIfNullOrEmpty(ReplyEvent, nameof(ReplyEvent));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RequestTimeout, TimeSpan.Zero, nameof(RequestTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CloseTimeout, TimeSpan.Zero, nameof(CloseTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxMessageBytes, 1024, nameof(MaxMessageBytes));
        ArgumentNullException.ThrowIfNull(Reconnect, nameof(Reconnect));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        ArgumentNullException.ThrowIfNull(Random, nameof(Random));
        Reconnect.Validate();
    }
}

/// <summary>
/// Jittered exponential back-off between reconnection attempts: attempt <c>n</c> (from 0) waits
/// <c>min(MaxDelay, InitialDelay * Multiplier^n)</c>, less a random share of up to <see cref="Jitter"/> of it,
/// so that many clients cut off together do not come back together.
/// </summary>
public sealed class ReconnectPolicy
{
    /// <summary>Whether a lost connection is made again (default true). Without it, a lost connection fails every call.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The back-off before the first attempt (default 0.5 s).</summary>
    public TimeSpan InitialDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest back-off (default 30 s).</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The growth of the back-off per failed attempt (default 2).</summary>
    public double Multiplier { get; set; } = 2;

    /// <summary>The largest share of a back-off taken off at random, from 0 to 1 (default 0.5: each wait is 50-100% of its step).</summary>
    public double Jitter { get; set; } = 0.5;

    /// <summary>Attempts before giving up, or null to keep trying (default null).</summary>
    public int? MaxAttempts { get; set; }

    /// <summary>The back-off before attempt <paramref name="attempt"/> (from 0), given a uniform <paramref name="sample"/> in [0, 1).</summary>
    public TimeSpan DelayFor(int attempt, double sample)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(attempt);
        var step = InitialDelay.TotalMilliseconds * Math.Pow(Multiplier, Math.Min(attempt, 64));
        var capped = Math.Min(MaxDelay.TotalMilliseconds, step);
        return TimeSpan.FromMilliseconds(capped * (1 - (Jitter * Math.Clamp(sample, 0, 1))));
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(InitialDelay, TimeSpan.Zero, nameof(InitialDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDelay, InitialDelay, nameof(MaxDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(Multiplier, 1, nameof(Multiplier));
        if (Jitter is < 0 or > 1 || double.IsNaN(Jitter))
        {
            throw new ArgumentOutOfRangeException(nameof(Jitter), Jitter, "Jitter must be between 0 and 1.");
        }

        if (MaxAttempts is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAttempts), MaxAttempts, "MaxAttempts must be at least 1, or null.");
        }
    }
}
