#include "shapes.hpp"

namespace shapes {
Shape::~Shape() = default;
std::string Shape::name() const { return "shape"; }

Circle::Circle(double r) : radius_(r) {}
double Circle::area() const { return 3.14159265358979 * radius_ * radius_; }
std::string Circle::name() const { return "circle"; }

Shape *make_circle(double r) { return new Circle(r); }
}
