namespace Benchmarks;

/// <summary>
/// One simulated client: its socket, opened on first use and replaced after a transport failure,
/// and the client it registered, if the scenario needs one.
/// </summary>
public sealed class Worker(int index, Uri url, TimeSpan timeout) : IAsyncDisposable
{
    private ProtocolConnection? _connection;
    private int _names;

    /// <summary>The token of this worker's own client.</summary>
    public string? Token { get; set; }

    /// <summary>The id of this worker's own client.</summary>
    public int ClientId { get; set; }

    /// <summary>A distinct name for the next registration, so stored rows can be told apart.</summary>
    public string NextName() => $"bench-{index}-{++_names}";

    /// <summary>The worker's long-lived socket.</summary>
    public async ValueTask<ProtocolConnection> ConnectionAsync(CancellationToken cancellationToken) =>
        _connection ??= await OpenAsync(cancellationToken);

    /// <summary>A fresh socket the caller owns.</summary>
    public Task<ProtocolConnection> OpenAsync(CancellationToken cancellationToken) =>
        ProtocolConnection.OpenAsync(url, timeout, cancellationToken);

    /// <summary>Logs in as this worker's client and checks the server knows it by the same id.</summary>
    public async Task CheckLoginAsync(ProtocolConnection connection, CancellationToken cancellationToken)
    {
        var id = await connection.LoginAsync(Token ?? throw new InvalidOperationException("The worker has no client."), cancellationToken);
        if (id != ClientId)
        {
            throw new RequestFailedException("wrong_id", connectionBroken: false);
        }
    }

    /// <summary>Closes the long-lived socket; the next <see cref="ConnectionAsync"/> opens another.</summary>
    public async ValueTask DropConnectionAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => DropConnectionAsync();
}
