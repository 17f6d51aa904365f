namespace WebSocketFrontend.Sessions;

/// <summary>
/// A socket's token bucket, refilled from the elapsed time whenever a request asks for a token.
/// The library's token bucket refills on a timer of its own; one timer per idle socket costs memory
/// and wake-ups for nothing, so this one is computed on demand. Used by the receive loop only.
/// </summary>
public sealed class RequestBudget(int perSecond, int burst, TimeProvider time)
{
    private double _tokens = burst;
    private long _last = time.GetTimestamp();

    /// <summary>Takes one token; false when the socket is over its budget.</summary>
    public bool TryTake()
    {
        var now = time.GetTimestamp();
        _tokens = Math.Min(burst, _tokens + (time.GetElapsedTime(_last, now).TotalSeconds * perSecond));
        _last = now;
        if (_tokens < 1)
        {
            return false;
        }

        _tokens--;
        return true;
    }
}
