using Microsoft.Extensions.Options;
using WebSocketFrontend.Edge;

namespace WebSocketFrontend.SocketIo;

/// <summary>Registers and maps the Socket.IO endpoint.</summary>
public static class SocketIoHostingExtensions
{
    /// <summary>Registers the <c>SocketIo</c> settings (validated at start) and the Engine.IO server.</summary>
    public static WebApplicationBuilder AddGatewaySocketIo(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SocketIoOptions>()
            .Bind(builder.Configuration.GetSection(SocketIoOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.Path.StartsWith('/') && !o.Path.Contains('?') && !o.Path.Contains('#'),
                "SocketIo:Path must be a path starting with '/' (default /socket.io/).")
            .Validate(o => o.CorsOrigins.All(OriginPolicy.IsValidEntry),
                "SocketIo:CorsOrigins must hold \"*\" or origins such as \"https://app.example.com\" (scheme, host, optional port).")
            .ValidateOnStart();
        builder.Services.AddSingleton<SocketIoServer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SocketIoServer>());
        return builder;
    }

    /// <summary>
    /// Maps the endpoint at <c>SocketIo:Path</c> behind edge admission. An Engine.IO session is admitted once, at
    /// its handshake, and holds its slot until it closes; its later polls and its upgrade are not counted again.
    /// </summary>
    public static IEndpointConventionBuilder MapSocketIo(this WebApplication app)
    {
        var path = app.Services.GetRequiredService<IOptions<SocketIoOptions>>().Value.Path;

        // The server is resolved at the first request, so that building the application reads no Protocol setting:
        // a wrong one is reported by its own validation at start.
        return app.Map(path, static context => context.RequestServices.GetRequiredService<SocketIoServer>().HandleAsync(context))
            .RequireEdgeAdmission(static context => SocketIoServer.HasQueryValue(context.Request, "sid") || HttpMethods.IsOptions(context.Request.Method));
    }
}
