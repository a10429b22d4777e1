// A consumer of libshapes: dynamic_cast across the library boundary needs the library to export
// `typeinfo for shapes::Circle` (and shapes::Shape); without it this program does not link.
#include <cstdio>
#include <memory>
#include "shapes.hpp"

int main()
{
    std::unique_ptr<shapes::Shape> shape(shapes::make_circle(2.0));
    auto *circle = dynamic_cast<shapes::Circle *>(shape.get());
    if (circle == nullptr) {
        std::puts("not a circle");
        return 1;
    }
    std::printf("%s %.2f\n", circle->name().c_str(), circle->area());
    return 0;
}
