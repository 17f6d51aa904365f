using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tests.Infrastructure;

/// <summary>
/// One of the built hosts (<c>Silo</c>, <c>WebSocketFrontend</c>) run as a process of its own with
/// <c>dotnet &lt;dll&gt;</c>, the way a deployment runs it. The last lines of its output are kept
/// to explain a failure; <see cref="KillAsync"/> is a SIGKILL, the crash no shutdown code sees.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private const int KeptLines = 300;

    /// <summary>Exceptions are logged on one line; their first part says enough.</summary>
    private const int KeptLineLength = 600;
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly StreamWriter _log;
    private bool _logClosed;

    private HostProcess(string name, Process process, string logPath)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        _log = new StreamWriter(logPath) { AutoFlush = true };
    }

    /// <summary>Every line the process wrote, in full.</summary>
    public string LogPath { get; }

    /// <summary>The name the test gave it (<c>silo-1</c>, <c>frontend-2</c>), used in failure messages.</summary>
    public string Name { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts <c>&lt;project&gt;.dll</c> from its own build output; <paramref name="settings"/> become
    /// <c>--Key=Value</c> arguments, and its output goes to <c>&lt;name&gt;.log</c> in <paramref name="logFolder"/>.
    /// It runs in <paramref name="workingDirectory"/>, by default the folder of its dll.
    /// </summary>
    public static HostProcess Start(string name, string project, IReadOnlyDictionary<string, string> settings, string logFolder, string? workingDirectory = null)
    {
        var dll = BuiltDll(project);
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var (key, value) in settings)
        {
            start.ArgumentList.Add($"--{key}={value}");
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = new Process { StartInfo = start };
        var host = new HostProcess(name, process, Path.Combine(logFolder, name + ".log"));
        process.OutputDataReceived += (_, e) => host.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => host.Keep(e.Data is null ? null : "stderr: " + e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    /// <summary>
    /// The dll of <paramref name="project"/> built in the same configuration as this test assembly:
    /// <c>Tests/bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c> here, <c>&lt;project&gt;/bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c> there.
    /// The Tests project references both hosts, so building it builds them first.
    /// </summary>
    public static string BuiltDll(string project)
    {
        var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var configuration = output.Parent;
        var bin = configuration?.Parent;
        var root = bin?.Parent?.Parent;
        if (configuration is null || bin?.Name != "bin" || root is null)
        {
            throw new InvalidOperationException($"The test assembly is not under <project>/bin/<Configuration>/<tfm>/ ({output.FullName}); cannot find the built {project}.");
        }

        var dll = Path.Combine(root.FullName, project, "bin", configuration.Name, output.Name, project + ".dll");
        return File.Exists(dll)
            ? dll
            : throw new InvalidOperationException($"{dll} is missing: build the solution (dotnet build Orleans.sln) in {configuration.Name}.");
    }

    /// <summary>Fails the calling test, with the process's last output, when it has exited.</summary>
    public void AssertRunning()
    {
        if (_process.HasExited)
        {
            Assert.Fail($"{Name} exited with code {_process.ExitCode}.\n{Tail()}");
        }
    }

    /// <summary>SIGKILL on Linux (TerminateProcess on Windows): no shutdown code runs, sockets are reset by the OS.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        using var bound = new CancellationTokenSource(ExitBound);
        await _process.WaitForExitAsync(bound.Token);
    }

    /// <summary>
    /// True when the process exits within <paramref name="bound"/>; its output has then been read to the end,
    /// so <see cref="Tail"/> holds its last words.
    /// </summary>
    public async Task<bool> ExitsWithinAsync(TimeSpan bound)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(bound);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The last <paramref name="lines"/> lines the process wrote, stdout and stderr interleaved.</summary>
    public string Tail(int lines = 80)
    {
        var kept = _output.ToArray();
        var state = _process.HasExited ? $"exited with {_process.ExitCode}" : "running";
        return $"----- {Name} ({state}), last {Math.Min(lines, kept.Length)} of its lines; all of them in {LogPath} -----\n" +
            string.Join('\n', kept.TakeLast(lines));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (InvalidOperationException)
        {
            // Never started: nothing to kill.
        }

        _process.Dispose();
        lock (_log)
        {
            _logClosed = true;
            _log.Dispose();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            if (!_logClosed)
            {
                _log.WriteLine(line);
            }
        }

        _output.Enqueue(line.Length > KeptLineLength ? line[..KeptLineLength] + " …" : line);
        while (_output.Count > KeptLines && _output.TryDequeue(out _))
        {
        }
    }

    /// <summary>The <c>dotnet</c> that runs this test, so the hosts run on the same runtime.</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath))
        {
            return hostPath;
        }

        return Environment.ProcessPath is { } current && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }
}
