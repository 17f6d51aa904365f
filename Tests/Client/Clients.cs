using ClientManagement.Client;

namespace Tests.ClientLibrary;

/// <summary>Library clients for the tests, every wait bounded.</summary>
public static class Clients
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A connected client of <paramref name="uri"/> with short back-offs on the real clock, unless <paramref name="configure"/> says otherwise.</summary>
    public static async Task<GatewayClient> ConnectAsync(Uri uri, Action<GatewayClientOptions>? configure = null)
    {
        var options = new GatewayClientOptions
        {
            Uri = uri,
            RequestTimeout = Timeout,
            Reconnect = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        configure?.Invoke(options);
        var client = new GatewayClient(options);
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        return client;
    }

    /// <summary>The next <paramref name="count"/> responses of <paramref name="client"/>, within <see cref="Timeout"/>.</summary>
    public static async Task<List<PendingResponse>> TakeAsync(this GatewayClient client, int count)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(Timeout);
        var taken = new List<PendingResponse>(count);
        if (count == 0)
        {
            return taken;
        }

        await foreach (var response in client.ReadResponsesAsync(bound.Token))
        {
            taken.Add(response);
            if (taken.Count == count)
            {
                break;
            }
        }

        return taken;
    }

    /// <summary>A task that completes when <paramref name="client"/> next enters <paramref name="state"/>.</summary>
    public static Task<ConnectionStateChangedEventArgs> NextStateAsync(this GatewayClient client, GatewayConnectionState state)
    {
        var next = new TaskCompletionSource<ConnectionStateChangedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(object? sender, ConnectionStateChangedEventArgs e)
        {
            if (e.State == state && next.TrySetResult(e))
            {
                client.StateChanged -= Handler;
            }
        }

        client.StateChanged += Handler;
        return next.Task.WaitAsync(Timeout, TestContext.Current.CancellationToken);
    }
}
