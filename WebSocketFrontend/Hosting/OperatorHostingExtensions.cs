using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Orleans.Dashboard;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// What operators and client developers use besides <c>/ws</c>: the OpenAPI document of <c>/api</c>,
/// problem-details error bodies, the console page and the Orleans Dashboard.
/// </summary>
public static partial class OperatorHostingExtensions
{
    /// <summary>The console's static files, under the content root.</summary>
    private const string ConsoleFolder = "wwwroot/console";

    /// <summary>Registers the OpenAPI document, problem details and the dashboard setting.</summary>
    public static WebApplicationBuilder AddGatewayOperators(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DashboardSettings>().Bind(builder.Configuration.GetSection(DashboardSettings.Section)).ValidateOnStart();

        // A malformed query value is a 400 with a problem body in every environment, never an exception page.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = false);
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            // Bodies the framework writes itself (an unmatched route, a query value that does not parse) get a code too.
            context.ProblemDetails.Extensions.TryAdd("code", CodeOf(context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode));
        });
        builder.Services.AddOpenApi(o =>
        {
            o.ShouldInclude = description => description.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true;
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Client-management gateway API",
                    Version = "v1",
                    Description = "Back ends post responses to clients; operators read and manage clients, queues and sessions. " +
                        "Every route needs 'Authorization: Bearer <admin key>'; errors are RFC 9457 problem details with the protocol's error code in 'code'.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiEndpoints.SecurityScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "The admin key (Api:AdminKey, or Api:PreviousAdminKey while it rolls over).",
                };
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                operation.Security ??= [];
                operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiEndpoints.SecurityScheme, context.Document)] = [] });
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    /// <summary>
    /// Maps <c>/openapi/v1.json</c> and <c>/dashboard</c> (both behind the admin key), the console at
    /// <c>/console</c>, and problem-details bodies for the errors <c>/api</c> answers without one.
    /// </summary>
    public static WebApplication MapGatewayOperators(this WebApplication app)
    {
        app.UseWhen(
            static c => c.Request.Path.StartsWithSegments("/api"),
            static branch => branch.UseStatusCodePages());
        app.UseWhen(
            static c => c.Request.Path.StartsWithSegments("/openapi") || c.Request.Path.StartsWithSegments(DashboardSettings.Path),
            static branch => branch.Use(RequireAdminKeyAsync));
        app.MapOpenApi();

        if (app.Services.GetRequiredService<IOptions<DashboardSettings>>().Value.Enabled)
        {
            app.MapOrleansDashboard(routePrefix: DashboardSettings.Path);
        }

        // The files ship next to the program; a content root configured elsewhere (a folder of settings) may not have them.
        var folder = new[] { app.Environment.ContentRootPath, AppContext.BaseDirectory }
            .Select(root => Path.Combine(root, ConsoleFolder))
            .FirstOrDefault(Directory.Exists);
        if (folder is null)
        {
            LogConsoleMissing(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OperatorHostingExtensions).FullName!), ConsoleFolder);
            return app;
        }

        app.UseWhen(
            static c => c.Request.Path.StartsWithSegments("/console"),
            static branch => branch.Use(static (context, next) =>
            {
                SetConsoleHeaders(context);
                return next(context);
            }));

        // Only files with a known type are served, and never a folder's listing.
        app.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(folder), RequestPath = "/console" });
        var index = Path.Combine(folder, "index.html");
        app.MapGet("/console", () => TypedResults.PhysicalFile(index, "text/html; charset=utf-8")).ExcludeFromDescription();
        return app;
    }

    private static async Task RequireAdminKeyAsync(HttpContext context, RequestDelegate next)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
        if (ApiEndpoints.AdminKeyRefusal(options, context) is { } refusal)
        {
            await refusal.ExecuteAsync(context);
            return;
        }

        await next(context);
    }

    /// <summary>
    /// The page runs only its own scripts and styles, talks only to this origin (HTTP and WebSocket),
    /// and may not be framed; no response is sniffed into another type.
    /// </summary>
    private static void SetConsoleHeaders(HttpContext context)
    {
        var host = context.Request.Host.Value;
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy =
            $"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://{host} wss://{host}; " +
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The console is off: no {Folder} next to the program or under the content root")]
    private static partial void LogConsoleMissing(ILogger logger, string folder);

    private static string CodeOf(int status) => status switch
    {
        StatusCodes.Status401Unauthorized => "unauthorized",
        StatusCodes.Status404NotFound => ErrorCodes.NotFound,
        StatusCodes.Status405MethodNotAllowed => "method_not_allowed",
        StatusCodes.Status413PayloadTooLarge => ErrorCodes.TooLarge,
        StatusCodes.Status503ServiceUnavailable => ErrorCodes.Unavailable,
        >= 500 => "internal_error",
        _ => ErrorCodes.BadRequest,
    };
}
