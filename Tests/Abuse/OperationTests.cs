using System.Net;
using System.Net.Http.Headers;
using Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// The attack: started from another directory, the server did not read its appsettings.json and
/// logged every request; every HTTP 408 logged a full stack trace.
/// </summary>
public sealed class OperationTests
{
    [Fact]
    public async Task TheBuiltServerStartedFromAnotherDirectoryReadsItsOwnSettings()
    {
        var elsewhere = Directory.CreateTempSubdirectory("cm-cwd-");
        using var database = new TempDatabase();
        var port = FreePort.Next();
        try
        {
            await using var process = HostProcess.Start("frontend-elsewhere", "WebSocketFrontend", new Dictionary<string, string>
            {
                ["urls"] = $"http://127.0.0.1:{port}",
                ["Storage:SqlitePath"] = database.Path,
                ["Cluster:SiloPort"] = FreePort.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Cluster:GatewayPort"] = FreePort.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Cluster:ServiceId"] = "client-management-tests",
            }, elsewhere.FullName, workingDirectory: elsewhere.FullName);

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            var ready = false;
            for (var i = 0; i < 120 && !ready; i++)
            {
                process.AssertRunning();
                try
                {
                    ready = (await http.GetAsync("/health/ready", TestContext.Current.CancellationToken)).StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                if (!ready)
                {
                    await Task.Delay(500, TestContext.Current.CancellationToken);
                }
            }

            Assert.True(ready, process.Tail());
            for (var i = 0; i < 5; i++)
            {
                await http.GetAsync("/health/live", TestContext.Current.CancellationToken);
            }

            // Its appsettings.json keeps ASP.NET Core at Warning: without it every request is logged at Information.
            Assert.DoesNotContain("Request starting", process.Tail(300));
            Assert.False(File.Exists(Path.Combine(elsewhere.FullName, "appsettings.json")));
        }
        finally
        {
            elsewhere.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheContentRootIsTheApplicationDirectoryUnlessConfigured()
    {
        var elsewhere = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "cm-root"));

        Assert.Equal(AppContext.BaseDirectory, ContentRoot.Resolve([]));
        Assert.Equal(elsewhere, ContentRoot.Resolve([$"--contentRoot={elsewhere}"]));
    }

    [Theory]
    [InlineData("malformed chunked body", 400)]
    [InlineData("headers too large", 431)]
    public async Task ARequestKestrelRefusesIsAnsweredWithItsStatusAndLoggedWithoutAStackTrace(string fault, int status)
    {
        using var database = new TempDatabase();
        var logs = new CapturingLoggerProvider();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Orleans"] = "Warning",
        }, services: s => s.AddSingleton<ILoggerProvider>(logs));

        var request = fault == "malformed chunked body"
            ? $"POST /api/clients/1/responses HTTP/1.1\r\nHost: {server.HttpUri.Authority}\r\nAuthorization: Bearer {GatewayServer.AdminKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"
            : $"GET /health/live HTTP/1.1\r\nHost: {server.HttpUri.Authority}\r\nX-Filler: {new string('x', 64 * 1024)}\r\n\r\n";
        var statusLine = await SendRawAsync(server.HttpUri, request);

        Assert.StartsWith($"HTTP/1.1 {status}", statusLine);
        Assert.DoesNotContain(logs.Entries, e => e.Exception is not null && e.Level >= LogLevel.Information);
        using var http = new HttpClient { BaseAddress = server.HttpUri, Timeout = TimeSpan.FromSeconds(20) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task MetricsCanRequireTheAdminKey()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Metrics:RequireAdminKey"] = "true",
        });
        using var http = new HttpClient { BaseAddress = server.HttpUri, Timeout = TimeSpan.FromSeconds(20) };

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/metrics", TestContext.Current.CancellationToken)).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/metrics", TestContext.Current.CancellationToken)).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);
        var metrics = await http.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Contains("gateway_connections", metrics);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task MetricsCanMoveToAPortOfTheirOwn()
    {
        using var database = new TempDatabase();
        var (main, metrics) = (FreePort.Next(), FreePort.Next());
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["urls"] = $"http://127.0.0.1:{main};http://127.0.0.1:{metrics}",
            ["Metrics:Port"] = metrics.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

        var onMain = await http.GetAsync($"http://127.0.0.1:{main}/metrics", TestContext.Current.CancellationToken);
        var onItsPort = await http.GetAsync($"http://127.0.0.1:{metrics}/metrics", TestContext.Current.CancellationToken);
        var forgedHost = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{main}/metrics");
        forgedHost.Headers.Host = $"127.0.0.1:{metrics}";

        Assert.Equal(HttpStatusCode.NotFound, onMain.StatusCode);
        Assert.Equal(HttpStatusCode.OK, onItsPort.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(forgedHost, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{main}/health/ready", TestContext.Current.CancellationToken)).StatusCode);
    }

    /// <summary>Writes <paramref name="request"/> on a connection of its own and returns the status line of the answer.</summary>
    private static async Task<string> SendRawAsync(Uri server, string request)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(20));
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, bound.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request), bound.Token);
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        return await reader.ReadLineAsync(bound.Token) ?? string.Empty;
    }

    /// <summary>Keeps every log entry of the server, whatever its category.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<(string Category, LogLevel Level, Exception? Exception)> _entries = new();

        public IReadOnlyList<(string Category, LogLevel Level, Exception? Exception)> Entries => [.. _entries];

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, System.Collections.Concurrent.ConcurrentQueue<(string, LogLevel, Exception?)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((category, logLevel, exception));
        }
    }
}
