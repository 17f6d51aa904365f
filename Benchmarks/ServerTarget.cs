namespace Benchmarks;

/// <summary>
/// Where a run's server comes from: one the tool starts (the gateway from its binaries, with a data
/// directory of its own that outlives restarts, or the ceiling), or one already running at <c>--url</c>.
/// </summary>
public sealed class ServerTarget : IAsyncDisposable
{
    private readonly Uri? _url;
    private readonly string? _gatewayDll;
    private readonly string? _dataDirectory;

    private ServerTarget(string name, Uri? url, string? gatewayDll)
    {
        Name = name;
        _url = url;
        _gatewayDll = gatewayDll;
        if (gatewayDll is not null)
        {
            _dataDirectory = Directory.CreateTempSubdirectory("gateway-bench-").FullName;
        }
    }

    /// <summary><c>gateway</c> or <c>ceiling</c>.</summary>
    public string Name { get; }

    /// <summary>True when the tool starts the server, and so can restart it and read its process.</summary>
    public bool Owned => _url is null;

    /// <summary>The gateway the options name: started from <c>--server</c> with fresh data, or the one at <c>--url</c>.</summary>
    public static ServerTarget Gateway(BenchmarkOptions options) =>
        options.Server is { } dll ? new ServerTarget("gateway", null, dll) : new ServerTarget("gateway", options.Url, null);

    /// <summary>The ceiling, always started by the tool.</summary>
    public static ServerTarget Ceiling() => new("ceiling", null, null);

    /// <summary>Starts the server (a restart keeps the gateway's data), or hands out the external one.</summary>
    public async Task<RunningServer> StartAsync(CancellationToken cancellationToken)
    {
        if (_url is not null)
        {
            return new RunningServer(_url, null);
        }

        var process = _gatewayDll is not null
            ? await ServerProcess.StartGatewayAsync(_gatewayDll, _dataDirectory!, cancellationToken)
            : await ServerProcess.StartCeilingAsync(cancellationToken);
        Phases.Log(Name, $"started, process {process.ProcessId}, {process.Url}");
        return new RunningServer(process.Url, process);
    }

    /// <summary>Removes the gateway's data directory.</summary>
    public ValueTask DisposeAsync()
    {
        if (_dataDirectory is not null && Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>A started server: its endpoint, and its process when the tool owns it; disposing stops that process.</summary>
public sealed class RunningServer(Uri url, ServerProcess? process) : IAsyncDisposable
{
    public Uri Url { get; } = url;

    public ServerProcess? Process { get; } = process;

    public ValueTask DisposeAsync() => Process?.DisposeAsync() ?? ValueTask.CompletedTask;
}
