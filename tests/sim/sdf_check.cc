// Validate an SDF file with libsdformat and print what it holds, one fact per line, so tests can
// check the generated Gazebo world and robot against the scene they came from.
//
//   sdf_check FILE     exit 0: valid; exit 1: libsdformat reported errors (printed on stderr)
//
// Output lines (tab-separated):
//   world    NAME  MODEL_COUNT
//   model    NAME  STATIC(0|1)  LINK_COUNT  JOINT_COUNT
//   joint    MODEL NAME  TYPE  LOWER  UPPER
//   sensor   MODEL LINK  NAME  TYPE  WIDTH  HEIGHT  HFOV_RAD  RATE_HZ
//   plugin   OWNER FILENAME  LABEL(or -)
#include <sdf/sdf.hh>

#include <iostream>
#include <string>

namespace {

const char *JointTypeName(sdf::JointType type) {
  switch (type) {
    case sdf::JointType::FIXED: return "fixed";
    case sdf::JointType::PRISMATIC: return "prismatic";
    case sdf::JointType::REVOLUTE: return "revolute";
    case sdf::JointType::CONTINUOUS: return "continuous";
    default: return "other";
  }
}

void PrintPlugins(const std::string &owner, const sdf::ElementPtr &element) {
  if (!element || !element->HasElement("plugin")) return;
  for (auto plugin = element->GetElement("plugin"); plugin;
       plugin = plugin->GetNextElement("plugin")) {
    std::string label = "-";
    if (plugin->HasElement("label")) label = plugin->GetElement("label")->GetValue()->GetAsString();
    std::cout << "plugin\t" << owner << '\t'
              << plugin->GetAttribute("filename")->GetAsString() << '\t' << label << '\n';
  }
}

void PrintModel(const sdf::Model &model) {
  std::cout << "model\t" << model.Name() << '\t' << (model.Static() ? 1 : 0) << '\t'
            << model.LinkCount() << '\t' << model.JointCount() << '\n';
  for (uint64_t j = 0; j < model.JointCount(); ++j) {
    const auto *joint = model.JointByIndex(j);
    const auto *axis = joint->Axis(0);
    std::cout << "joint\t" << model.Name() << '\t' << joint->Name() << '\t'
              << JointTypeName(joint->Type()) << '\t' << (axis ? axis->Lower() : 0.0) << '\t'
              << (axis ? axis->Upper() : 0.0) << '\n';
  }
  for (uint64_t l = 0; l < model.LinkCount(); ++l) {
    const auto *link = model.LinkByIndex(l);
    for (uint64_t s = 0; s < link->SensorCount(); ++s) {
      const auto *sensor = link->SensorByIndex(s);
      const auto *camera = sensor->CameraSensor();
      std::cout << "sensor\t" << model.Name() << '\t' << link->Name() << '\t' << sensor->Name()
                << '\t' << sensor->TypeStr() << '\t' << (camera ? camera->ImageWidth() : 0)
                << '\t' << (camera ? camera->ImageHeight() : 0) << '\t'
                << (camera ? camera->HorizontalFov().Radian() : 0.0) << '\t'
                << sensor->UpdateRate() << '\n';
    }
  }
  PrintPlugins(model.Name(), model.Element());
  for (uint64_t m = 0; m < model.ModelCount(); ++m) PrintModel(*model.ModelByIndex(m));
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::cerr << "usage: sdf_check FILE.sdf\n";
    return 2;
  }
  sdf::Root root;
  const sdf::Errors errors = root.Load(argv[1]);
  for (const auto &error : errors) std::cerr << error << '\n';
  if (!errors.empty()) return 1;
  for (uint64_t w = 0; w < root.WorldCount(); ++w) {
    const auto *world = root.WorldByIndex(w);
    std::cout << "world\t" << world->Name() << '\t' << world->ModelCount() << '\n';
    PrintPlugins(world->Name(), world->Element());
    for (uint64_t m = 0; m < world->ModelCount(); ++m) PrintModel(*world->ModelByIndex(m));
  }
  if (root.Model() != nullptr) PrintModel(*root.Model());
  return 0;
}
