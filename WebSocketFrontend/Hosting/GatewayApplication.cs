using Prometheus;
using Grains.Hosting;
using WebSocketFrontend.Edge;
using WebSocketFrontend.SocketIo;

namespace WebSocketFrontend.Hosting;

/// <summary>Builds the whole gateway; the program and the tests start it the same way.</summary>
public static class GatewayApplication
{
    /// <summary>
    /// The configured application, ready to run; <paramref name="args"/> are configuration overrides,
    /// and <paramref name="services"/> registers services after the gateway's own, so that they replace them (a test's clock).
    /// </summary>
    public static WebApplication Create(string[] args, Action<IServiceCollection>? services = null)
    {
        // ASP.NET Core's own instruments measure each HTTP request and connection; for a WebSocket the
        // request is the whole session, so they say nothing the gateway's metrics do not, and
        // listening to them cost every session a share of its CPU. The runtime's instruments stay.
        Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate =
            instrument => !instrument.Meter.Name.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = ContentRoot.Resolve(args),
        });

        // Orleans' placement pipeline logs every grain call at Information through Polly.
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.AddGatewayCluster();
        builder.AddGatewayEdge();
        builder.AddGatewayProtocol();
        builder.AddGatewaySocketIo();
        builder.AddGatewayOperators();
        builder.Services.AddSingleton<ISocketIoConnectionHandler, SocketIoSessionHandler>();
        services?.Invoke(builder.Services);

        var app = builder.Build();
        app.MapGateway();
        app.MapSocketIo();

        return app;
    }
}
