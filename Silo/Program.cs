using Microsoft.Extensions.Hosting;
using Silo.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.AddStandaloneSilo();
builder.Build().Run();
