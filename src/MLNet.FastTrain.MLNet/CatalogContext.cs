using System.Reflection;
using Microsoft.ML.Runtime;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// The environment an ML.NET catalog belongs to. ML.NET's own extension packages read it through an internal
/// interface (<c>IInternalCatalog.Environment</c>); a third-party package reaches the same property by reflection,
/// so that its messages go to the user's <c>MLContext.Log</c> like ML.NET's own.
/// </summary>
internal static class CatalogContext
{
    private const string PropertyName = "Microsoft.ML.Data.IInternalCatalog.Environment";

    public static IHostEnvironment Of(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        for (var type = catalog.GetType(); type is not null; type = type.BaseType)
        {
            var property = type.GetProperty(PropertyName, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            if (property?.GetValue(catalog) is IHostEnvironment env) return env;
        }
        throw new NotSupportedException($"The ML.NET catalog {catalog.GetType().Name} exposes no environment; this package was built against Microsoft.ML 5.0.1.");
    }
}
