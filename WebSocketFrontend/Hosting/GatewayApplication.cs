using Prometheus;

namespace WebSocketFrontend.Hosting;

/// <summary>Builds the whole gateway; the program and the tests start it the same way.</summary>
public static class GatewayApplication
{
    /// <summary>The configured application, ready to run; <paramref name="args"/> are configuration overrides.</summary>
    /// <param name="args">Configuration overrides, as on the command line.</param>
    /// <param name="configureServices">Last changes to the services, after the gateway's own (tests replace a clock).</param>
    public static WebApplication Create(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        // ASP.NET Core's own instruments measure each HTTP request and connection; for a WebSocket the
        // request is the whole session, so they say nothing the gateway's metrics do not, and
        // listening to them cost every session a share of its CPU. The runtime's instruments stay.
        Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate =
            instrument => !instrument.Meter.Name.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));

        var builder = WebApplication.CreateBuilder(args);

        // Orleans' placement pipeline logs every grain call at Information through Polly.
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.AddGatewayCluster();
        builder.AddGatewayProtocol();
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.MapGateway();
        return app;
    }
}
