using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Tests.Infrastructure;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Sessions;

namespace Tests.Telemetry;

/// <summary>A request's trace, exported in memory: from the socket through the grain calls to storage.</summary>
public sealed class TracingTests
{
    [Fact]
    public async Task ASendIsOneTraceThatSpansTheFrontendTheMailboxGrainAndItsStorage()
    {
        using var database = new TempDatabase();
        var exported = new ExportedActivities();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string> { ["Protocol:ClientSend"] = "any", ["Telemetry:Traces"] = "true" },
            services: s => s.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(exported)));
        await using var sender = await WsClient.ConnectAsync(server.WebSocketUri);
        await using var receiver = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, senderId) = await sender.RegisterAsync(new { name = "traced" });
        var (_, receiverId) = await receiver.RegisterAsync(new { name = "offline" });
        Assert.Equal("logged", (await sender.RequestAsync("login", new { token })).Action());
        var sessionId = server.Services.GetRequiredService<SessionRegistry>().Sessions.Single(s => s.Login?.ClientId == senderId).Id;

        Assert.Equal("sent", (await sender.RequestAsync("send", new { token, to = receiverId, payload = 1 })).Action());

        // Other servers of the test process trace as well: this connection's spans are told by its session id.
        Activity? send = null;
        List<Activity> trace = [];
        for (var i = 0; i < 200; i++)
        {
            var all = exported.Snapshot();
            send = all.SingleOrDefault(a => a.Source.Name == GatewayTracing.SourceName && a.DisplayName == "send" && Equals(a.GetTagItem("gateway.session_id"), sessionId));
            trace = send is null ? [] : [.. all.Where(a => a.TraceId == send.TraceId)];
            if (send is not null && trace.Any(IsMailboxSend) && trace.Any(IsStorage))
            {
                break;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.NotNull(send);
        Assert.Equal(default, send.ParentSpanId);
        Assert.Equal(ActivityKind.Server, send.Kind);
        Assert.Equal(senderId, send.GetTagItem("gateway.client_id"));
        Assert.Same(send, Assert.Single(trace, a => a.ParentSpanId == default));
        Assert.Contains(trace, IsMailboxSend);
        Assert.Contains(trace, IsStorage);

        // The login before it is a trace of its own, not a parent: one trace per request.
        var login = Assert.Single(exported.Snapshot(), a => a.DisplayName == "login" && Equals(a.GetTagItem("gateway.session_id"), sessionId));
        Assert.NotEqual(send.TraceId, login.TraceId);
        Assert.Equal(default, login.ParentSpanId);
    }

    private static bool IsMailboxSend(Activity activity) =>
        activity.Source.Name == "Microsoft.Orleans.Application" && activity.Kind == ActivityKind.Server
        && activity.DisplayName.Contains("IClientIdGrain/SendFromClient", StringComparison.Ordinal);

    private static bool IsStorage(Activity activity) => activity.Source.Name == "Microsoft.Orleans.Storage";

    /// <summary>The exporter's list, safe to read while the exporter adds to it from other threads.</summary>
    private sealed class ExportedActivities : ICollection<Activity>
    {
        private readonly List<Activity> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public Activity[] Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void Add(Activity item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(Activity item) => Snapshot().Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => ((IEnumerable<Activity>)Snapshot()).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
