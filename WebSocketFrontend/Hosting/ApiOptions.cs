namespace WebSocketFrontend.Hosting;

/// <summary>The HTTP API for back ends and operators, section <c>Api</c>.</summary>
public sealed class ApiOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Api";

    /// <summary>The bearer key that <c>/api</c> requests must carry; without one the routes are off (404).</summary>
    public string? AdminKey { get; set; }
}
